"""NNX EfficientNet-B0 (flax_models.nnx): the architecture, parameter count
and ``fusion`` settings of the Linen flax_models.EfficientNetB0, built from
the NNX layers; ``model.eval()`` runs each block's expansion + depthwise conv
as jax_fcm.pw_dw where the planner picks it."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from flax_models.efficientnet import FUSION_SETTINGS
from flax_models.folding import expansion_fused
from flax_models.mobilenet import efficientnet_lite0_blocks, layer_fused
from flax_models.nnx_layers import ConvBN, ExpandDepthwise
from flax_models.nnx_models import Classifier, StemBlocksHead
from jax_fcm.activations import activation_fn


class SqueezeExcite(nnx.Module):
    """Global average pool → 1×1 conv to ``reduced`` channels → act → 1×1 conv
    back → sigmoid → rescale (attributes ``reduce``, ``expand``)."""

    def __init__(self, features: int, reduced: int, activation: str = "silu", *, dtype: Any = None,
                 param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        conv = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.reduce = nnx.Conv(features, reduced, (1, 1), **conv)
        self.expand = nnx.Conv(reduced, features, (1, 1), **conv)
        self.activation = activation

    def __call__(self, x):
        s = activation_fn(self.activation)(self.reduce(jnp.mean(x, axis=(1, 2), keepdims=True)))
        return x * jax.nn.sigmoid(self.expand(s)).astype(x.dtype)


class SqueezeExciteResidual(nnx.Module):
    """EfficientNet's MBConv block as flax_models.SqueezeExciteResidual
    (attributes ``expand_dw``, ``se``, ``project``)."""

    def __init__(self, in_features: int, out_features: int, expand_ratio: int, strides: int = 1,
                 kernel_size: int = 3, *, se_ratio: float = 0.25, activation: str = "silu", padding: Any = "SAME",
                 momentum: float = 0.99, epsilon: float = 1e-3, fused: bool | str = "auto", dtype: Any = None,
                 param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        common = dict(momentum=momentum, epsilon=epsilon, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        hidden = in_features * expand_ratio
        self.expand_dw = ExpandDepthwise(in_features, hidden, kernel_size, strides, padding, activation=activation,
                                         expand=expand_ratio != 1, fused=fused, **common)
        self.se = SqueezeExcite(hidden, max(1, int(in_features * se_ratio)), activation, dtype=dtype,
                                param_dtype=param_dtype, rngs=rngs)
        self.project = ConvBN(hidden, out_features, 1, activation=None, fused=expansion_fused(fused), **common)
        self.residual = strides == 1 and in_features == out_features

    def __call__(self, x):
        y = self.project(self.se(self.expand_dw(x)))
        return y + x.astype(y.dtype) if self.residual else y


class EfficientNetB0(StemBlocksHead):
    """EfficientNet-B0 as flax_models.EfficientNetB0 (5,288,548 parameters)."""

    def __init__(self, num_classes: int = 1000, fusion: str = "auto", dropout_rate: float = 0.2, *,
                 dtype: Any = None, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        if fusion not in FUSION_SETTINGS:
            raise ValueError(f"fusion must be one of {tuple(FUSION_SETTINGS)}; got {fusion!r}")
        common = dict(momentum=0.99, epsilon=1e-3, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.stem = ConvBN(3, 32, 3, 2, "SAME", activation="silu", fused=layer_fused(fusion), **common)
        layers, features = [], 32
        for t, k, stride, out in efficientnet_lite0_blocks():
            layers.append(SqueezeExciteResidual(features, out, t, stride, k, fused=FUSION_SETTINGS[fusion], **common))
            features = out
        self.blocks = nnx.List(layers)
        self.head = ConvBN(features, 1280, 1, activation="silu", fused=layer_fused(fusion), **common)
        self.classifier = Classifier(1280, num_classes, dropout_rate, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
