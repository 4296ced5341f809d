"""Layer suite of `python -m jax_fcm.bench --pw-pw`: fused PW -> PW pairs
through `jax_fcm.pw_pw` against XLA running the same two 1x1 convolutions
(`implementation="xla"`: lax.conv, bias and activation twice under jit),
cuDNN through PyTorch where it is installed (two Conv2d 1x1), and the HBM
floor (input, output and weights once: the intermediate never leaves the SM).

The pairs are the zoo's MLPs (ConvNeXt-T stages 1 and 2: C -> 4C, GELU -> C;
MobileViT-S's 144-wide transformer at 32x32 tokens: 144 -> 288, SiLU -> 144)
and MobileNetV2's projection -> next block's expansion (seed 000's PW -> PW:
144 -> 24 -> 144 ReLU6 at 56x56, 192 -> 32 -> 192 at 28x28)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

import jax_fcm
from jax_fcm import _torch_timing
from jax_fcm.pw_pw_op import kernel_refusal

OP_NAME = "jax_fcm.pw_pw"


@dataclasses.dataclass(frozen=True)
class PwPwLayer:
    name: str
    hw: int
    cin: int
    hidden: int
    cout: int
    act1: str | None = "gelu_exact"
    act2: str | None = None


SUITE = (
    PwPwLayer("convnext_56_96_384_96", 56, 96, 384, 96),
    PwPwLayer("convnext_28_192_768_192", 28, 192, 768, 192),
    PwPwLayer("mvit_32_144_288_144", 32, 144, 288, 144, act1="silu"),
    PwPwLayer("mv2_56_144_24_144", 56, 144, 24, 144, act1=None, act2="relu6"),
    PwPwLayer("mv2_28_192_32_192", 28, 192, 32, 192, act1=None, act2="relu6"),
)


def layer_bytes(layer: PwPwLayer, n: int, dtype) -> int:
    """Fewest bytes the pair must move: input, output and weights once."""
    weights = (layer.cin + 1) * layer.hidden + (layer.hidden + 1) * layer.cout
    return (n * layer.hw * layer.hw * (layer.cin + layer.cout) + weights) * jnp.dtype(dtype).itemsize


def make_args(layer: PwPwLayer, n: int, dtype, seed: int):
    rng = np.random.default_rng(seed)

    def arr(shape, scale=1.0):
        return jnp.asarray(rng.standard_normal(shape) * scale, dtype)

    return (arr((n, layer.hw, layer.hw, layer.cin)), arr((1, 1, layer.cin, layer.hidden), 1 / np.sqrt(layer.cin)),
            arr((1, 1, layer.hidden, layer.cout), 1 / np.sqrt(layer.hidden)), arr((layer.hidden,), 0.1),
            arr((layer.cout,), 0.1))


def op(layer: PwPwLayer, implementation):
    """implementation None times the kernel wherever it takes the pair (what
    jax_fcm.planner.use_pw_pw_kernel's rule was fitted on), else the default
    (XLA's two convolutions: float32 with Cin > 96)."""

    def f(x, w1, w2, b1, b2):
        impl = implementation
        if impl is None and kernel_refusal(x.dtype, layer.cin, layer.hidden, layer.cout) is None:
            impl = "kernel"
        return jax_fcm.pw_pw(x, w1, w2, b1, b2, pw1_activation=layer.act1, pw2_activation=layer.act2,
                             implementation=impl)

    return f


def torch_time_us(layer: PwPwLayer, n: int, dtype, iters: int) -> float | None:
    """The pair in cuDNN (two torch.nn.Conv2d 1x1 with their activations); None without torch + CUDA."""

    def build(torch):
        return torch.nn.Sequential(torch.nn.Conv2d(layer.cin, layer.hidden, 1),
                                   _torch_timing.activation_module(torch, layer.act1),
                                   torch.nn.Conv2d(layer.hidden, layer.cout, 1),
                                   _torch_timing.activation_module(torch, layer.act2))

    return _torch_timing.torch_net_time_us(build, n, layer.cin, layer.hw, dtype, iters)
