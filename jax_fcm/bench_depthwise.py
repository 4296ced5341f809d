"""Layer suite of `python -m jax_fcm.bench --depthwise`: standalone depthwise
convolutions (+ bias + activation) through `jax_fcm.depthwise` against XLA
running the same layer (`implementation="xla"`: lax.conv with
feature_group_count=C, bias and activation under jit), cuDNN through PyTorch
where it is installed, and the HBM floor (input, output and weights once).

The layers are the depthwise convolutions of the zoo's models that stay
unfused: every stride-2 and deep MobileNetV2 depthwise layer, ConvNeXt's 7x7
ones (a LayerNorm follows) and EfficientNet's 5x5 ones (a squeeze-excite
follows in B0)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

import jax_fcm
from jax_fcm import _torch_timing

OP_NAME = "jax_fcm.depthwise"


@dataclasses.dataclass(frozen=True)
class DwLayer:
    name: str
    hw: int
    c: int
    k: int = 3
    stride: int = 1
    activation: str | None = "relu6"


SUITE = (
    DwLayer("mv2_112_32", 112, 32),
    DwLayer("mv2_112s2_96", 112, 96, stride=2),
    DwLayer("mv2_56_144", 56, 144),
    DwLayer("mv2_56s2_144", 56, 144, stride=2),
    DwLayer("mv2_28_192", 28, 192),
    DwLayer("mv2_14_576", 14, 576),
    DwLayer("mv2_14s2_576", 14, 576, stride=2),
    DwLayer("mv2_7_960", 7, 960),
    DwLayer("convnext_56_96_k7", 56, 96, k=7, activation=None),
    DwLayer("convnext_28_192_k7", 28, 192, k=7, activation=None),
    DwLayer("convnext_14_384_k7", 14, 384, k=7, activation=None),
    DwLayer("convnext_7_768_k7", 7, 768, k=7, activation=None),
    DwLayer("effb0_56s2_144_k5", 56, 144, k=5, stride=2, activation="silu"),
    DwLayer("effb0_14_672_k5", 14, 672, k=5, activation="silu"),
    DwLayer("effb0_7_1152_k5", 7, 1152, k=5, activation="silu"),
)


def layer_bytes(layer: DwLayer, n: int, dtype) -> int:
    """Fewest bytes the layer must move: input, output and weights once."""
    ho = -(-layer.hw // layer.stride)
    elems = n * layer.hw * layer.hw * layer.c + n * ho * ho * layer.c + (layer.k * layer.k + 1) * layer.c
    return elems * jnp.dtype(dtype).itemsize


def make_args(layer: DwLayer, n: int, dtype, seed: int):
    rng = np.random.default_rng(seed)
    return (jnp.asarray(rng.standard_normal((n, layer.hw, layer.hw, layer.c)), dtype),
            jnp.asarray(rng.standard_normal((layer.k, layer.k, 1, layer.c)) / layer.k, dtype),
            jnp.asarray(rng.standard_normal((layer.c,)) * 0.1, dtype))


def op(layer: DwLayer, implementation):
    def f(x, kernel, bias):
        return jax_fcm.depthwise(x, kernel, bias, strides=layer.stride, padding="SAME", activation=layer.activation,
                                 implementation=implementation)

    return f


def torch_time_us(layer: DwLayer, n: int, dtype, iters: int) -> float | None:
    """The layer in cuDNN (torch.nn.Conv2d(groups=C) + activation); None without torch + CUDA."""

    def build(torch):
        return torch.nn.Sequential(*_torch_timing.depthwise_layers(torch, layer.c, layer.k, layer.stride,
                                                                   layer.activation))

    return _torch_timing.torch_net_time_us(build, n, layer.c, layer.hw, dtype, iters)
