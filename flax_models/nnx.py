"""NNX layers: ``from flax_models import nnx as fnnx; fnnx.SeparableConv(...)``."""

from flax_models.nnx_layers import ConvBN, InvertedResidual, SeparableConv

__all__ = ["ConvBN", "InvertedResidual", "SeparableConv"]
