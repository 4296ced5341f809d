"""EfficientNet-B0 (Tan & Le, 2019) in Linen: MBConv blocks with a
squeeze-excite between the depthwise conv and the projection, SiLU, TF "SAME"
padding. The squeeze-excite keeps the whole block from being one kernel, so in
inference mode each block's expansion and depthwise conv run as one
``jax_fcm.pw_dw`` kernel where the planner picks it (ExpandDepthwise), the
squeeze-excite in XLA, and the projection as ``jax_fcm.pointwise`` where
that measured faster. ``fusion="never"`` is the stock Flax model with the
same parameter tree; "always" fuses every expansion + depthwise pair.
Stochastic depth is left out: inference is what fusion changes."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flax_models.folding import expansion_fused
from flax_models.layers import ConvBN, ExpandDepthwise
from flax_models.mobilenet import classify, efficientnet_lite0_blocks, layer_fused
from jax_fcm.activations import activation_fn

FUSION_SETTINGS = {"auto": "auto", "always": True, "never": False}


class SqueezeExcite(nn.Module):
    """Global average pool → 1×1 conv to ``reduced`` channels (bias) → act →
    1×1 conv back (bias) → sigmoid → rescale x. Submodules ``reduce`` and
    ``expand``; runs in XLA (two matrix-vector products per image)."""

    reduced: int
    activation: str = "silu"
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        conv = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        s = jnp.mean(x, axis=(1, 2), keepdims=True)
        s = activation_fn(self.activation)(nn.Conv(self.reduced, (1, 1), name="reduce", **conv)(s))
        s = nn.Conv(x.shape[-1], (1, 1), name="expand", **conv)(s)
        return x * jax.nn.sigmoid(s).astype(x.dtype)


class SqueezeExciteResidual(nn.Module):
    """EfficientNet's MBConv block: ExpandDepthwise (1×1 expansion to
    ``expand_ratio`` × the input's channels, none at 1; k×k depthwise; SiLU
    after each) → SqueezeExcite (reduced to ``se_ratio`` × the block's input
    channels) → 1×1 projection + BatchNorm (linear) → + x where shapes allow."""

    features: int
    expand_ratio: int
    strides: int = 1
    kernel_size: int = 3
    se_ratio: float = 0.25
    activation: str = "silu"
    padding: Any = "SAME"
    momentum: float = 0.99
    epsilon: float = 1e-3
    fused: bool | str = "auto"
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, use_running_average: bool):
        cin = x.shape[-1]
        common = dict(momentum=self.momentum, epsilon=self.epsilon, dtype=self.dtype, param_dtype=self.param_dtype)
        y = ExpandDepthwise(cin * self.expand_ratio, self.kernel_size, self.strides, self.padding, self.activation,
                            expand=self.expand_ratio != 1, fused=self.fused, name="expand_dw", **common)(
            x, use_running_average)
        y = SqueezeExcite(max(1, int(cin * self.se_ratio)), self.activation, dtype=self.dtype,
                          param_dtype=self.param_dtype, name="se")(y)
        y = ConvBN(self.features, 1, activation=None, fused=expansion_fused(self.fused), name="project", **common)(
            y, use_running_average)
        if self.strides == 1 and cin == self.features:
            y = y + x.astype(y.dtype)
        return y


class EfficientNetB0(nn.Module):
    """EfficientNet-B0: 3×3 stem (32, stride 2) → 16 MBConv blocks with
    squeeze-excite (the same expansions, kernels, strides and widths as
    EfficientNet-Lite0) → 1×1 head (1280) → pool → dropout → classifier;
    5,288,548 parameters with 1000 classes, as torchvision's efficientnet_b0."""

    num_classes: int = 1000
    fusion: str = "auto"
    dropout_rate: float = 0.2
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.fusion not in FUSION_SETTINGS:
            raise ValueError(f"fusion must be one of {tuple(FUSION_SETTINGS)}; got {self.fusion!r}")
        fused = FUSION_SETTINGS[self.fusion]
        common = dict(momentum=0.99, epsilon=1e-3, dtype=self.dtype, param_dtype=self.param_dtype)
        x = ConvBN(32, 3, 2, "SAME", activation="silu", fused=layer_fused(self.fusion), name="stem", **common)(
            x, not train)
        for index, (t, k, stride, features) in enumerate(efficientnet_lite0_blocks()):
            x = SqueezeExciteResidual(features, t, stride, k, fused=fused, name=f"block{index}", **common)(x, not train)
        x = ConvBN(1280, 1, activation="silu", fused=layer_fused(self.fusion), name="head", **common)(x, not train)
        return classify(x, train, num_classes=self.num_classes, dropout_rate=self.dropout_rate, dtype=self.dtype,
                        param_dtype=self.param_dtype)
