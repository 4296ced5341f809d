"""Layer suite of `python -m jax_fcm.bench --conv2d`: dense convolutions (+
bias + activation) through `jax_fcm.conv2d` against XLA running the same
layer (`implementation="xla"`: lax.conv, bias and activation under jit),
cuDNN through PyTorch where it is installed, and the HBM floor (input, output
and weights once).

The layers are the dense convolutions of the zoo's models: the stems (3x3
stride 2 over RGB in MobileNetV2 / EfficientNet and MobileViT, ConvNeXt's
4x4 stride-4 patchify), MobileViT-S's local and fusion 3x3 convs (224 input)
and ConvNeXt's 2x2 stride-2 downsampling."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

import jax_fcm
from jax_fcm import _torch_timing

OP_NAME = "jax_fcm.conv2d"


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    name: str
    hw: int
    cin: int
    cout: int
    k: int = 3
    stride: int = 1
    padding: str = "SAME"
    activation: str | None = "silu"

    @property
    def out_hw(self) -> int:
        return -(-self.hw // self.stride) if self.padding == "SAME" else (self.hw - self.k) // self.stride + 1


SUITE = (
    ConvLayer("mv2_stem_224", 224, 3, 32, stride=2, activation="relu6"),
    ConvLayer("mvit_stem_224", 224, 3, 16, stride=2),
    ConvLayer("convnext_stem_224", 224, 3, 96, k=4, stride=4, padding="VALID", activation=None),
    ConvLayer("mvit_local_28_96", 28, 96, 96),
    ConvLayer("mvit_fusion_28_192", 28, 192, 96),
    ConvLayer("mvit_local_14_128", 14, 128, 128),
    ConvLayer("mvit_fusion_14_256", 14, 256, 128),
    ConvLayer("mvit_local_7_160", 7, 160, 160),
    ConvLayer("mvit_fusion_7_320", 7, 320, 160),
    ConvLayer("convnext_down_56_96", 56, 96, 192, k=2, stride=2, padding="VALID", activation=None),
    ConvLayer("convnext_down_28_192", 28, 192, 384, k=2, stride=2, padding="VALID", activation=None),
    ConvLayer("convnext_down_14_384", 14, 384, 768, k=2, stride=2, padding="VALID", activation=None),
)


def layer_bytes(layer: ConvLayer, n: int, dtype) -> int:
    """Fewest bytes the layer must move: input, output and weights once."""
    elems = (n * layer.hw * layer.hw * layer.cin + n * layer.out_hw**2 * layer.cout
             + (layer.k * layer.k * layer.cin + 1) * layer.cout)
    return elems * jnp.dtype(dtype).itemsize


def make_args(layer: ConvLayer, n: int, dtype, seed: int):
    rng = np.random.default_rng(seed)
    fan_in = layer.k * layer.k * layer.cin
    return (jnp.asarray(rng.standard_normal((n, layer.hw, layer.hw, layer.cin)), dtype),
            jnp.asarray(rng.standard_normal((layer.k, layer.k, layer.cin, layer.cout)) / np.sqrt(fan_in), dtype),
            jnp.asarray(rng.standard_normal((layer.cout,)) * 0.1, dtype))


def op(layer: ConvLayer, implementation):
    """implementation None times the kernel (the default would ask the planner)."""

    def f(x, kernel, bias):
        return jax_fcm.conv2d(x, kernel, bias, strides=layer.stride, padding=layer.padding,
                              activation=layer.activation, implementation=implementation or "kernel")

    return f


def torch_time_us(layer: ConvLayer, n: int, dtype, iters: int) -> float | None:
    """The layer in cuDNN (torch.nn.Conv2d + activation); None without torch + CUDA. PyTorch pads
    symmetrically: the stems' extra bottom/right row is on the top/left there (the same work)."""

    def build(torch):
        pad = 0 if layer.padding == "VALID" else layer.k // 2
        return torch.nn.Sequential(torch.nn.Conv2d(layer.cin, layer.cout, layer.k, layer.stride, pad),
                                   _torch_timing.activation_module(torch, layer.activation))

    return _torch_timing.torch_net_time_us(build, n, layer.cin, layer.hw, dtype, iters)
