"""Layer suite of `python -m jax_fcm.bench --pw-dw`: 1x1 expansion ->
depthwise pairs through `jax_fcm.pw_dw` against XLA running the same two
convolutions (`implementation="xla"`), cuDNN through PyTorch where installed
(Conv2d 1x1 then a depthwise Conv2d) and the HBM floor (input, output and
weights once: the expanded tensor never leaves the SM).

The pairs are MobileNetV2's expansions with their depthwise convs (3x3,
ReLU6) and EfficientNet-B0's (SiLU, 5x5 where the network has them). Each
runs twice: as the fused kernel (`implementation="fused"`, rows "<name>") and
as the split path (`"split"`: XLA's 1x1 conv then `jax_fcm.depthwise`, rows
"<name> split"), the two options `planner.pw_dw_choice` picks between."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

import jax_fcm
from jax_fcm import _torch_timing
from jax_fcm.pw_dw_op import fused_where_it_fits

OP_NAME = "jax_fcm.pw_dw"


@dataclasses.dataclass(frozen=True)
class PwDwLayer:
    name: str
    hw: int
    cin: int
    cmid: int
    k: int = 3
    stride: int = 1
    act: str = "relu6"
    path: str = "fused"  # or "split"


_PAIRS = (
    PwDwLayer("mv2_112s2_16_96", 112, 16, 96, stride=2),
    PwDwLayer("mv2_56_24_144", 56, 24, 144),
    PwDwLayer("mv2_28_32_192", 28, 32, 192),
    PwDwLayer("mv2_14_64_384", 14, 64, 384),
    PwDwLayer("mv2_7_160_960", 7, 160, 960),
    PwDwLayer("effb0_28_40_240_k5", 28, 40, 240, k=5, act="silu"),
    PwDwLayer("effb0_14_112_672_k5", 14, 112, 672, k=5, act="silu"),
    PwDwLayer("effb0_7_192_1152_k5", 7, 192, 1152, k=5, act="silu"),
)
SUITE = tuple(p for pair in _PAIRS for p in (pair, dataclasses.replace(pair, name=pair.name + " split", path="split")))


def layer_bytes(layer: PwDwLayer, n: int, dtype) -> int:
    """Fewest bytes the pair must move: input, output and weights once."""
    ho = -(-layer.hw // layer.stride)
    weights = (layer.cin + 1) * layer.cmid + (layer.k * layer.k + 1) * layer.cmid
    return (n * (layer.hw * layer.hw * layer.cin + ho * ho * layer.cmid) + weights) * jnp.dtype(dtype).itemsize


def make_args(layer: PwDwLayer, n: int, dtype, seed: int):
    rng = np.random.default_rng(seed)

    def arr(shape, scale=1.0):
        return jnp.asarray(rng.standard_normal(shape) * scale, dtype)

    return (arr((n, layer.hw, layer.hw, layer.cin)), arr((1, 1, layer.cin, layer.cmid), 1 / np.sqrt(layer.cin)),
            arr((layer.k, layer.k, 1, layer.cmid), 1 / layer.k), arr((layer.cmid,), 0.1), arr((layer.cmid,), 0.1))


def op(layer: PwDwLayer, implementation):
    """implementation None times the row's path (the fused kernel where it
    takes the call, else the split path); "xla" XLA's two convolutions."""

    def f(x, pw_kernel, dw_kernel, pw_bias, dw_bias):
        impl = implementation
        if impl is None:
            impl = layer.path
            if impl == "fused":
                impl = fused_where_it_fits(layer.k, layer.stride, layer.cin, x.dtype)
        return jax_fcm.pw_dw(x, pw_kernel, dw_kernel, pw_bias, dw_bias, strides=layer.stride, pw_activation=layer.act,
                             dw_activation=layer.act, implementation=impl)

    return f


def torch_time_us(layer: PwDwLayer, n: int, dtype, iters: int) -> float | None:
    """The pair in cuDNN (1x1 Conv2d, activation, depthwise Conv2d,
    activation); timed on the fused rows only, None without torch + CUDA."""
    if layer.path != "fused":
        return None

    def build(torch):
        return torch.nn.Sequential(torch.nn.Conv2d(layer.cin, layer.cmid, 1),
                                   _torch_timing.activation_module(torch, layer.act),
                                   torch.nn.Conv2d(layer.cmid, layer.cmid, layer.k, stride=layer.stride,
                                                   padding=layer.k // 2, groups=layer.cmid),
                                   _torch_timing.activation_module(torch, layer.act))

    return _torch_timing.torch_net_time_us(build, n, layer.cin, layer.hw, dtype, iters)
