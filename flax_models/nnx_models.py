"""NNX versions of the models (flax_models.nnx): MobileNetV1, MobileNetV2 and
EfficientNet-Lite0 built from the NNX layers, with the architectures, widths
and ``fusion`` settings of the Linen models. ``model.eval()`` runs the fused
kernels where ``fusion`` says (BatchNorm folded); ``model.train()`` is the
stock network."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import nnx

from flax_models.mobilenet import efficientnet_lite0_blocks, fused_settings, layer_fused, mobilenet_v2_blocks
from flax_models.nnx_layers import ConvBN, InvertedResidual, SeparableConv
from jax_fcm.model_layers import MOBILENET_V1_BLOCKS, make_divisible


class Classifier(nnx.Module):
    """Global average pool → dropout → linear layer."""

    def __init__(self, in_features: int, num_classes: int, dropout_rate: float, *, dtype, param_dtype, rngs):
        self.dropout = nnx.Dropout(dropout_rate, rngs=rngs)
        self.linear = nnx.Linear(in_features, num_classes, dtype=dtype, param_dtype=param_dtype, rngs=rngs)

    def __call__(self, x):
        return self.linear(self.dropout(jnp.mean(x, axis=(1, 2))))


class MobileNetV1(nnx.Module):
    def __init__(self, num_classes: int = 1000, width_multiplier: float = 1.0, fusion: str | tuple = "auto", *,
                 dtype: Any = None, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        common = dict(momentum=0.99, epsilon=1e-3, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        fused = fused_settings(fusion, len(MOBILENET_V1_BLOCKS))
        features = int(32 * width_multiplier)
        self.stem = ConvBN(3, features, 3, 2, activation="relu", fused=layer_fused(fusion), **common)
        blocks = []
        for i, (out, strides) in enumerate(MOBILENET_V1_BLOCKS):
            out = int(out * width_multiplier)
            blocks.append(SeparableConv(features, out, 3, strides, dw_activation="relu", pw_activation="relu",
                                        fused=fused[i], **common))
            features = out
        self.blocks = nnx.List(blocks)
        self.classifier = Classifier(features, num_classes, 0.0, dtype=dtype, param_dtype=param_dtype, rngs=rngs)

    def __call__(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.classifier(x)


class StemBlocksHead(nnx.Module):
    """stem → blocks → head → classifier: the forward pass of the inverted
    residual networks and MobileViT, whose constructors set those four."""

    def __call__(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.classifier(self.head(x))


class InvertedResidualNetwork(StemBlocksHead):
    """The MobileNetV2 / EfficientNet-Lite skeleton: stem → inverted residual
    blocks (expansion, kernel, stride, channels) → 1×1 head → classifier."""

    def __init__(self, blocks, *, stem: int, head: int, padding, fusion, momentum: float, epsilon: float,
                 num_classes: int, dropout_rate: float, dtype, param_dtype, rngs: nnx.Rngs):
        common = dict(momentum=momentum, epsilon=epsilon, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        fused = fused_settings(fusion, len(blocks))
        self.stem = ConvBN(3, stem, 3, 2, padding, activation="relu6", fused=layer_fused(fusion), **common)
        layers, features = [], stem
        for index, (t, k, stride, out) in enumerate(blocks):
            layers.append(InvertedResidual(features, out, t, stride, kernel_size=k, padding=padding,
                                           fused=fused[index], **common))
            features = out
        self.blocks = nnx.List(layers)
        self.head = ConvBN(features, head, 1, activation="relu6", fused=layer_fused(fusion),
                           **common)
        self.classifier = Classifier(head, num_classes, dropout_rate, dtype=dtype, param_dtype=param_dtype, rngs=rngs)


class MobileNetV2(InvertedResidualNetwork):
    """torchvision's MobileNetV2 (widths, BatchNorm eps 1e-5 / momentum 0.1,
    symmetric padding) as in flax_models.MobileNetV2."""

    def __init__(self, num_classes: int = 1000, width_multiplier: float = 1.0, fusion: str | tuple = "auto",
                 dropout_rate: float = 0.2, *, dtype: Any = None, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        w = width_multiplier
        super().__init__(mobilenet_v2_blocks(w), stem=make_divisible(32 * w), head=make_divisible(1280 * max(1.0, w)),
                         padding=((1, 1), (1, 1)), fusion=fusion, momentum=0.9, epsilon=1e-5, num_classes=num_classes,
                         dropout_rate=dropout_rate, dtype=dtype, param_dtype=param_dtype, rngs=rngs)


class EfficientNetLite0(InvertedResidualNetwork):
    """EfficientNet-Lite0 as in flax_models.EfficientNetLite0."""

    def __init__(self, num_classes: int = 1000, fusion: str | tuple = "auto", dropout_rate: float = 0.2, *,
                 dtype: Any = None, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        super().__init__(efficientnet_lite0_blocks(), stem=32, head=1280, padding="SAME", fusion=fusion, momentum=0.99,
                         epsilon=1e-3, num_classes=num_classes, dropout_rate=dropout_rate, dtype=dtype,
                         param_dtype=param_dtype, rngs=rngs)
