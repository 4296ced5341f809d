"""Block suite of `python -m jax_fcm.bench --convnext`: whole ConvNeXt-T
blocks (7x7 depthwise -> LayerNorm -> 1x1 to 4C -> GELU -> 1x1 to C -> layer
scale -> + x) through `jax_fcm.convnext_block` against XLA running the same
block (`implementation="xla"`: lax ops under jit), PyTorch eager (cuDNN's
depthwise conv, LayerNorm, two Linear) where it is installed, and the HBM
floor of a fused block (x read, the output written and the weights read
once)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

import jax_fcm
from jax_fcm import _torch_timing

OP_NAME = "jax_fcm.convnext_block"


@dataclasses.dataclass(frozen=True)
class ConvNextBlock:
    name: str
    hw: int
    c: int
    k: int = 7

    @property
    def hidden(self) -> int:
        return 4 * self.c


# ConvNeXt-T's four stages at 224x224 input.
SUITE = (
    ConvNextBlock("convnext_56_96", 56, 96),
    ConvNextBlock("convnext_28_192", 28, 192),
    ConvNextBlock("convnext_14_384", 14, 384),
    ConvNextBlock("convnext_7_768", 7, 768),
)


def layer_bytes(block: ConvNextBlock, n: int, dtype) -> int:
    """Fewest bytes a fused block must move: x, the output and the weights once."""
    c, hidden = block.c, block.hidden
    weights = block.k * block.k * c + 4 * c + 2 * c * hidden + hidden + c + c
    return (2 * n * block.hw * block.hw * c + weights) * jnp.dtype(dtype).itemsize


def make_args(block: ConvNextBlock, n: int, dtype, seed: int):
    rng = np.random.default_rng(seed)
    c, hidden = block.c, block.hidden

    def arr(shape, scale=1.0, offset=0.0):
        return jnp.asarray(offset + rng.standard_normal(shape) * scale, dtype)

    return (arr((n, block.hw, block.hw, c)), arr((block.k, block.k, 1, c), 1.0 / block.k), arr((c,), 0.1),
            arr((c,), 0.1, 1.0), arr((c,), 0.1), arr((1, 1, c, hidden), c ** -0.5), arr((hidden,), 0.1),
            arr((1, 1, hidden, c), hidden ** -0.5), arr((c,), 0.1), arr((c,), 0.1))


def op(block: ConvNextBlock, implementation):
    """The block as jax_fcm.convnext_block(implementation=...) (None: its default)."""

    def f(*args):
        return jax_fcm.convnext_block(*args, implementation=implementation)

    return f


def torch_time_us(block: ConvNextBlock, n: int, dtype, iters: int) -> float | None:
    """The block in PyTorch eager (torchvision's CNBlock layers: cuDNN depthwise
    conv, LayerNorm and two Linear over channels-last activations); None
    without torch + CUDA."""

    def build(torch):
        class Block(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.dw = torch.nn.Conv2d(block.c, block.c, block.k, padding=block.k // 2, groups=block.c)
                self.norm = torch.nn.LayerNorm(block.c, eps=1e-6)
                self.pw1, self.act = torch.nn.Linear(block.c, block.hidden), torch.nn.GELU()
                self.pw2 = torch.nn.Linear(block.hidden, block.c)
                self.gamma = torch.nn.Parameter(torch.full((block.c,), 0.1))

            def forward(self, x):
                y = self.dw(x).permute(0, 2, 3, 1)  # NHWC view of the channels-last tensor
                y = self.pw2(self.act(self.pw1(self.norm(y)))) * self.gamma
                return x + y.permute(0, 3, 1, 2)

        return Block()

    return _torch_timing.torch_net_time_us(build, n, block.c, block.hw, dtype, iters)
