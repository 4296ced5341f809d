"""Layer suite of `python -m jax_fcm.bench --pointwise`: standalone pointwise
(1x1) convolutions (+ bias + activation) through `jax_fcm.pointwise` against
XLA running the same layer (`implementation="xla"`: lax.conv, bias and
activation under jit), cuDNN through PyTorch where it is installed, and the
HBM floor (input, output and weights once).

The layers are the 1x1 convolutions of the zoo's models that stay unfused:
MobileNetV2's expansions (before the depthwise conv), projections (after the
split path's depthwise) and head, and ConvNeXt's MLP (a LayerNorm comes
before it, so it does not fuse with the depthwise conv)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

import jax_fcm
from jax_fcm import _torch_timing

OP_NAME = "jax_fcm.pointwise"


@dataclasses.dataclass(frozen=True)
class PwLayer:
    name: str
    hw: int
    cin: int
    cout: int
    activation: str | None = "relu6"


SUITE = (
    PwLayer("mv2_56_24_144", 56, 24, 144),
    PwLayer("mv2_28_32_192", 28, 32, 192),
    PwLayer("mv2_14_64_384", 14, 64, 384),
    PwLayer("mv2_14_96_576", 14, 96, 576),
    PwLayer("mv2_7_160_960", 7, 160, 960),
    PwLayer("mv2_head_7_320_1280", 7, 320, 1280),
    PwLayer("mv2_56_144_24", 56, 144, 24, activation=None),
    PwLayer("mv2_14_576_96", 14, 576, 96, activation=None),
    PwLayer("mv2_7_960_320", 7, 960, 320, activation=None),
    PwLayer("convnext_56_96_384", 56, 96, 384, activation="gelu_exact"),
    PwLayer("convnext_56_384_96", 56, 384, 96, activation=None),
    PwLayer("convnext_7_768_3072", 7, 768, 3072, activation="gelu_exact"),
    PwLayer("convnext_7_3072_768", 7, 3072, 768, activation=None),
)


def layer_bytes(layer: PwLayer, n: int, dtype) -> int:
    """Fewest bytes the layer must move: input, output and weights once."""
    elems = n * layer.hw * layer.hw * (layer.cin + layer.cout) + (layer.cin + 1) * layer.cout
    return elems * jnp.dtype(dtype).itemsize


def make_args(layer: PwLayer, n: int, dtype, seed: int):
    rng = np.random.default_rng(seed)
    return (jnp.asarray(rng.standard_normal((n, layer.hw, layer.hw, layer.cin)), dtype),
            jnp.asarray(rng.standard_normal((1, 1, layer.cin, layer.cout)) / np.sqrt(layer.cin), dtype),
            jnp.asarray(rng.standard_normal((layer.cout,)) * 0.1, dtype))


def op(layer: PwLayer, implementation):
    """implementation None times the kernel (the default would ask the planner)."""

    def f(x, kernel, bias):
        return jax_fcm.pointwise(x, kernel, bias, activation=layer.activation,
                                 implementation=implementation or "kernel")

    return f


def torch_time_us(layer: PwLayer, n: int, dtype, iters: int) -> float | None:
    """The layer in cuDNN (torch.nn.Conv2d 1x1 + activation); None without torch + CUDA."""

    def build(torch):
        return torch.nn.Sequential(torch.nn.Conv2d(layer.cin, layer.cout, 1),
                                   _torch_timing.activation_module(torch, layer.activation))

    return _torch_timing.torch_net_time_us(build, n, layer.cin, layer.hw, dtype, iters)
