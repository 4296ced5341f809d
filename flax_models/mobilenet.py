"""MobileNetV1 (Keras-style: SAME padding), MobileNetV2 (torchvision's
architecture: symmetric padding, width multiplier with channels rounded to 8)
and EfficientNet-Lite0 (MBConv k3/k5, ReLU6, no squeeze-excite) in Linen,
with every depthwise → pointwise pair a SeparableConv.

``fusion="never"`` is the stock Flax model (nn.Conv + nn.BatchNorm only) and
has the same parameter tree as the fused settings, which run DW→PW pairs as
one jax_fcm kernel in inference mode (``train=False``): ``"always"`` every
pair, and every inverted-residual block with an expansion as one
jax_fcm.mbconv kernel (where it fits the GPU); ``"auto"`` (the default) what
jax_fcm.planner picks: whole blocks and pairs where they measured faster,
the other pairs split (docs/benchmarks.md); or a plan, a tuple of one value per pair in
network order: False, True (the pair), "block" (the whole block; the pair
where there is no expansion) or "split" (jax_fcm.depthwise + XLA's 1x1
conv), as ``python -m jax_fcm.plan`` prints it."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from flax_models.layers import ConvBN, InvertedResidual, SeparableConv
from jax_fcm.model_layers import (EFFICIENTNET_LITE0_STAGES, MOBILENET_V1_BLOCKS, MOBILENET_V2_STAGES,
                                  make_divisible)

FUSION_CHOICES = ("auto", "always", "never")


def fused_settings(fusion, pairs: int) -> tuple:
    """One ``fused`` value per DW→PW pair of a model: from a ``fusion``
    choice, or a plan — a tuple of False / True / "block" in network order, as
    ``python -m jax_fcm.plan`` prints it."""
    if isinstance(fusion, tuple):
        if len(fusion) != pairs or not all(isinstance(f, bool) or f in ("block", "split") for f in fusion):
            raise ValueError(f"a fusion plan must be a tuple of {pairs} values False, True, 'block' or 'split' (one per "
                             f"depthwise -> pointwise pair); got {fusion!r}")
        return fusion
    if fusion not in FUSION_CHOICES:
        raise ValueError(f"fusion must be one of {FUSION_CHOICES} or a tuple of {pairs} values; got {fusion!r}")
    return ({"auto": "auto", "always": "block", "never": False}[fusion],) * pairs


def layer_fused(fusion) -> bool | str:
    """The ``fused`` of a model's single ConvBN layers (the stem's dense conv,
    the 1x1 head) for its ``fusion``: stock with "never", the planner's
    choice (jax_fcm.conv2d / jax_fcm.pointwise where measured faster) otherwise."""
    return False if isinstance(fusion, str) and fusion == "never" else "auto"


def mobilenet_v2_blocks(width_multiplier: float = 1.0) -> list:
    """(expansion, kernel, stride, channels) of each MobileNetV2 block."""
    return [(t, 3, s if j == 0 else 1, make_divisible(c * width_multiplier)) for t, c, n, s in MOBILENET_V2_STAGES
            for j in range(n)]


def efficientnet_lite0_blocks() -> list:
    """(expansion, kernel, stride, channels) of each EfficientNet-Lite0 block."""
    return [(t, k, s if j == 0 else 1, c) for t, k, s, c, n in EFFICIENTNET_LITE0_STAGES for j in range(n)]


class MobileNetV1(nn.Module):
    num_classes: int = 1000
    width_multiplier: float = 1.0
    fusion: str | tuple = "auto"
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        fused = fused_settings(self.fusion, len(MOBILENET_V1_BLOCKS))
        common = dict(momentum=0.99, epsilon=1e-3, dtype=self.dtype, param_dtype=self.param_dtype)
        x = ConvBN(int(32 * self.width_multiplier), 3, 2, activation="relu", fused=layer_fused(self.fusion), name="stem",
                   **common)(x, not train)
        for i, (features, strides) in enumerate(MOBILENET_V1_BLOCKS):
            x = SeparableConv(int(features * self.width_multiplier), 3, strides, dw_activation="relu",
                              pw_activation="relu", fused=fused[i], name=f"block{i}", **common)(
                x, use_running_average=not train)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype, name="classifier")(x)


def inverted_residual_network(x, train: bool, *, blocks, stem: int, head: int, padding, fusion, common: dict,
                              num_classes: int, dropout_rate: float):
    """The MobileNetV2 / EfficientNet-Lite skeleton, called inside a compact
    __call__ (the submodules attach to the calling module): stem → inverted
    residual blocks (expansion, kernel, stride, channels) → 1×1 head (a
    jax_fcm.pointwise kernel where the planner picks it, unless fusion is
    "never") → global average pool → dropout → classifier."""
    x = ConvBN(stem, 3, 2, padding, activation="relu6", fused=layer_fused(fusion), name="stem", **common)(x, not train)
    fused = fused_settings(fusion, len(blocks))
    for index, (t, k, stride, features) in enumerate(blocks):
        x = InvertedResidual(features, t, stride, kernel_size=k, padding=padding, fused=fused[index],
                             name=f"block{index}", **common)(x, not train)
    x = ConvBN(head, 1, activation="relu6", fused=layer_fused(fusion), name="head", **common)(
        x, not train)
    return classify(x, train, num_classes=num_classes, dropout_rate=dropout_rate, dtype=common["dtype"],
                    param_dtype=common["param_dtype"])


def classify(x, train: bool, *, num_classes: int, dropout_rate: float, dtype, param_dtype):
    """Global average pool → dropout → the "classifier" Dense layer (inside a
    compact __call__, like inverted_residual_network)."""
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dropout(dropout_rate, deterministic=not train)(x)
    return nn.Dense(num_classes, dtype=dtype, param_dtype=param_dtype, name="classifier")(x)


class MobileNetV2(nn.Module):
    num_classes: int = 1000
    width_multiplier: float = 1.0
    fusion: str | tuple = "auto"
    dropout_rate: float = 0.2
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        w = self.width_multiplier
        blocks = mobilenet_v2_blocks(w)
        # torchvision: BatchNorm2d(eps=1e-5, momentum=0.1) == Flax momentum 0.9;
        # symmetric padding 1 for every 3x3, stride 2 included.
        return inverted_residual_network(
            x, train, blocks=blocks, stem=make_divisible(32 * w), head=make_divisible(1280 * max(1.0, w)),
            padding=((1, 1), (1, 1)), fusion=self.fusion,
            common=dict(momentum=0.9, epsilon=1e-5, dtype=self.dtype, param_dtype=self.param_dtype),
            num_classes=self.num_classes, dropout_rate=self.dropout_rate)


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (TF's edge variant: ReLU6, no squeeze-excite, fixed
    32-channel stem and 1280-channel head; TF "SAME" padding). Stochastic depth
    is left out: inference is what fusion changes."""

    num_classes: int = 1000
    fusion: str | tuple = "auto"
    dropout_rate: float = 0.2
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        blocks = efficientnet_lite0_blocks()
        return inverted_residual_network(
            x, train, blocks=blocks, stem=32, head=1280, padding="SAME", fusion=self.fusion,
            common=dict(momentum=0.99, epsilon=1e-3, dtype=self.dtype, param_dtype=self.param_dtype),
            num_classes=self.num_classes, dropout_rate=self.dropout_rate)
