"""NNX layers: ``from flax_models import nnx as fnnx; fnnx.SeparableConv(...)``."""

from flax_models.nnx_layers import SeparableConv

__all__ = ["SeparableConv"]
