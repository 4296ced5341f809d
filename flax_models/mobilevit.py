"""MobileViT (Mehta & Rastegari, ICLR 2022; variants XXS, XS, S) in Linen:
MobileNetV2 blocks, whose depthwise -> pointwise pairs are SeparableConvs
(fused per the model's ``fusion``, as in flax_models.mobilenet), and
MobileViT blocks: a local 3x3 + 1x1 convolution, transformer layers over
2x2 patches (each pixel position of a patch attends across patches), a 1x1
projection back and a 3x3 fusion with the block's input. SiLU throughout."""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flax_models.layers import ConvBN, InvertedResidual
from flax_models.mobilenet import classify, fused_settings, layer_fused
from jax_fcm.model_layers import MOBILEVIT_VARIANTS, mobilevit_layers


class TransformerLayer(nn.Module):
    """Pre-norm transformer layer: x + MHA(LN(x)), then x + FFN(LN(x)), FFN = 2x width with SiLU."""

    heads: int = 4
    ffn_ratio: int = 2
    dropout_rate: float = 0.1
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, deterministic: bool):
        width = x.shape[-1]
        common = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        y = nn.LayerNorm(**common, name="attention_norm")(x)
        y = nn.MultiHeadDotProductAttention(num_heads=self.heads, deterministic=deterministic, **common,
                                            name="attention")(y)
        x = x + nn.Dropout(self.dropout_rate, deterministic=deterministic)(y)
        y = nn.LayerNorm(**common, name="ffn_norm")(x)
        y = nn.silu(nn.Dense(width * self.ffn_ratio, **common, name="ffn_in")(y))
        y = nn.Dropout(self.dropout_rate, deterministic=deterministic)(y)
        y = nn.Dense(width, **common, name="ffn_out")(y)
        return x + nn.Dropout(self.dropout_rate, deterministic=deterministic)(y)


def to_patches(x, patch: int):
    """(N, H, W, D), H and W multiples of patch -> (N * patch^2, H/patch * W/patch, D):
    one sequence of patches per pixel position within a patch."""
    n, h, w, d = x.shape
    x = x.reshape(n, h // patch, patch, w // patch, patch, d).transpose(0, 2, 4, 1, 3, 5)
    return x.reshape(n * patch * patch, (h // patch) * (w // patch), d)


def from_patches(x, n: int, h: int, w: int, patch: int):
    """Inverse of to_patches."""
    d = x.shape[-1]
    x = x.reshape(n, patch, patch, h // patch, w // patch, d).transpose(0, 3, 1, 4, 2, 5)
    return x.reshape(n, h, w, d)


class MobileViTBlock(nn.Module):
    """Local 3x3 conv (BN, SiLU) -> 1x1 to ``width`` -> ``depth`` transformer
    layers over 2x2 patches -> LayerNorm -> 1x1 back (BN, SiLU) -> concat with
    the input -> 3x3 fusion conv (BN, SiLU). Feature maps whose sides are not
    multiples of the patch are resized bilinearly for the transformer and back
    (as the reference implementation does). ``fused`` is the three ConvBNs'
    (as ConvBN.fused: "auto" runs each as jax_fcm.conv2d / jax_fcm.pointwise
    where the planner says it measured faster)."""

    width: int
    depth: int
    patch: int = 2
    heads: int = 4
    dropout_rate: float = 0.1
    fused: bool | str = False
    momentum: float = 0.9
    epsilon: float = 1e-5
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        n, h, w, channels = x.shape
        bn = dict(momentum=self.momentum, epsilon=self.epsilon, fused=self.fused, dtype=self.dtype,
                  param_dtype=self.param_dtype)
        y = ConvBN(channels, 3, activation="silu", name="local", **bn)(x, not train)
        y = nn.Conv(self.width, (1, 1), use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                    name="to_width")(y)
        ph, pw = math.ceil(h / self.patch) * self.patch, math.ceil(w / self.patch) * self.patch
        if (ph, pw) != (h, w):
            y = jax.image.resize(y, (n, ph, pw, self.width), "bilinear")
        z = to_patches(y, self.patch)
        for i in range(self.depth):
            z = TransformerLayer(self.heads, dropout_rate=self.dropout_rate, dtype=self.dtype,
                                 param_dtype=self.param_dtype, name=f"transformer{i}")(z, deterministic=not train)
        z = nn.LayerNorm(dtype=self.dtype, param_dtype=self.param_dtype, name="norm")(z)
        y = from_patches(z, n, ph, pw, self.patch)
        if (ph, pw) != (h, w):
            y = jax.image.resize(y, (n, h, w, self.width), "bilinear")
        y = ConvBN(channels, 1, activation="silu", name="to_channels", **bn)(y, not train)
        return ConvBN(channels, 3, activation="silu", name="fusion", **bn)(jnp.concatenate([x, y], -1), not train)


class MobileViT(nn.Module):
    """``variant`` "xxs", "xs" or "s"; ``fusion`` as in flax_models.mobilenet
    (a plan has one entry per MobileNetV2 block)."""

    variant: str = "s"
    num_classes: int = 1000
    fusion: str | tuple = "auto"
    dropout_rate: float = 0.1
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        layers = mobilevit_layers(self.variant)  # checks the variant
        fused = fused_settings(self.fusion, sum(layer[0] == "mv2" for layer in layers))
        stem_channels, head = MOBILEVIT_VARIANTS[self.variant][0][0], MOBILEVIT_VARIANTS[self.variant][1]
        # BatchNorm as in the reference implementation (PyTorch momentum 0.1, eps 1e-5).
        common = dict(momentum=0.9, epsilon=1e-5, dtype=self.dtype, param_dtype=self.param_dtype)
        x = ConvBN(stem_channels, 3, 2, activation="silu", fused=layer_fused(self.fusion), name="stem", **common)(
            x, not train)
        mv2 = vit = 0
        for layer in layers:
            if layer[0] == "mv2":
                _, expansion, stride, channels = layer
                x = InvertedResidual(channels, expansion, stride, activation="silu", fused=fused[mv2], name=f"mv2_{mv2}",
                                     **common)(x, not train)
                mv2 += 1
            else:
                _, width, depth = layer
                x = MobileViTBlock(width, depth, dropout_rate=self.dropout_rate, fused=layer_fused(self.fusion),
                                   name=f"vit_{vit}", **common)(x, train)
                vit += 1
        x = ConvBN(head, 1, activation="silu", fused=layer_fused(self.fusion), name="head", **common)(x, not train)
        return classify(x, train, num_classes=self.num_classes, dropout_rate=self.dropout_rate, dtype=self.dtype,
                        param_dtype=self.param_dtype)
