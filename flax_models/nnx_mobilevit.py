"""NNX MobileViT (flax_models.nnx): the architecture, widths and ``fusion`` of
flax_models.MobileViT built from the NNX layers. Its MobileNetV2 blocks are
``nnx.InvertedResidual`` (SiLU; fused after ``model.eval()`` as ``fusion``
says); the MobileViT blocks' convolutions are ``ConvBN`` and ``nnx.Conv``,
their transformer layers ``nnx.MultiHeadAttention`` over 2x2 patches."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from flax_models.mobilenet import fused_settings, layer_fused
from flax_models.mobilevit import from_patches, to_patches
from flax_models.nnx_layers import ConvBN, InvertedResidual
from flax_models.nnx_models import Classifier, StemBlocksHead
from jax_fcm.model_layers import MOBILEVIT_VARIANTS, mobilevit_layers


class TransformerLayer(nnx.Module):
    """Pre-norm transformer layer: x + MHA(LN(x)), then x + FFN(LN(x)), FFN = 2x width with SiLU."""

    def __init__(self, width: int, heads: int = 4, ffn_ratio: int = 2, dropout_rate: float = 0.1, *, dtype: Any,
                 param_dtype: Any, rngs: nnx.Rngs):
        common = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.attention_norm = nnx.LayerNorm(width, **common)
        self.attention = nnx.MultiHeadAttention(heads, width, decode=False, **common)
        self.ffn_norm = nnx.LayerNorm(width, **common)
        self.ffn_in = nnx.Linear(width, width * ffn_ratio, **common)
        self.ffn_out = nnx.Linear(width * ffn_ratio, width, **common)
        self.dropout = nnx.Dropout(dropout_rate, rngs=rngs)

    def __call__(self, x):
        x = x + self.dropout(self.attention(self.attention_norm(x)))
        y = self.dropout(nnx.silu(self.ffn_in(self.ffn_norm(x))))
        return x + self.dropout(self.ffn_out(y))


class MobileViTBlock(nnx.Module):
    """Local 3x3 conv (BN, SiLU) -> 1x1 to ``width`` -> ``depth`` transformer
    layers over 2x2 patches -> LayerNorm -> 1x1 back (BN, SiLU) -> concat with
    the input -> 3x3 fusion conv (BN, SiLU), as flax_models.mobilevit.MobileViTBlock
    (``fused`` too)."""

    def __init__(self, channels: int, width: int, depth: int, patch: int = 2, heads: int = 4,
                 dropout_rate: float = 0.1, fused: bool | str = False, *, momentum: float, epsilon: float, dtype: Any,
                 param_dtype: Any, rngs: nnx.Rngs):
        bn = dict(momentum=momentum, epsilon=epsilon, fused=fused, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        common = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.local = ConvBN(channels, channels, 3, activation="silu", **bn)
        self.to_width = nnx.Conv(channels, width, (1, 1), use_bias=False, **common)
        self.transformers = nnx.List([TransformerLayer(width, heads, dropout_rate=dropout_rate, **common)
                                      for _ in range(depth)])
        self.norm = nnx.LayerNorm(width, **common)
        self.to_channels = ConvBN(width, channels, 1, activation="silu", **bn)
        self.fusion = ConvBN(2 * channels, channels, 3, activation="silu", **bn)
        self.width, self.patch = width, patch

    def __call__(self, x):
        n, h, w, _ = x.shape
        y = self.to_width(self.local(x))
        ph, pw = math.ceil(h / self.patch) * self.patch, math.ceil(w / self.patch) * self.patch
        if (ph, pw) != (h, w):  # resized for the patches and back, as the reference implementation does
            y = jax.image.resize(y, (n, ph, pw, self.width), "bilinear")
        z = to_patches(y, self.patch)
        for layer in self.transformers:
            z = layer(z)
        y = from_patches(self.norm(z), n, ph, pw, self.patch)
        if (ph, pw) != (h, w):
            y = jax.image.resize(y, (n, h, w, self.width), "bilinear")
        return self.fusion(jnp.concatenate([x, self.to_channels(y)], -1))


class MobileViT(StemBlocksHead):
    """``variant`` "xxs", "xs" or "s"; ``fusion`` as in flax_models.MobileViT
    (a plan has one entry per MobileNetV2 block)."""

    def __init__(self, variant: str = "s", num_classes: int = 1000, fusion: str | tuple = "auto",
                 dropout_rate: float = 0.1, *, dtype: Any = None, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        layers = mobilevit_layers(variant)  # checks the variant
        fused = fused_settings(fusion, sum(layer[0] == "mv2" for layer in layers))
        (stem, *_), head = MOBILEVIT_VARIANTS[variant][0], MOBILEVIT_VARIANTS[variant][1]
        # BatchNorm as in the reference implementation (PyTorch momentum 0.1, eps 1e-5).
        common = dict(momentum=0.9, epsilon=1e-5, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.stem = ConvBN(3, stem, 3, 2, activation="silu", fused=layer_fused(fusion), **common)
        blocks, features, mv2 = [], stem, 0
        for layer in layers:
            if layer[0] == "mv2":
                _, expansion, stride, channels = layer
                blocks.append(InvertedResidual(features, channels, expansion, stride, activation="silu",
                                               fused=fused[mv2], **common))
                features, mv2 = channels, mv2 + 1
            else:
                _, width, depth = layer
                blocks.append(MobileViTBlock(features, width, depth, dropout_rate=dropout_rate,
                                             fused=layer_fused(fusion), **common))
        self.blocks = nnx.List(blocks)
        self.head = ConvBN(features, head, 1, activation="silu", fused=layer_fused(fusion), **common)
        self.classifier = Classifier(head, num_classes, dropout_rate, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
