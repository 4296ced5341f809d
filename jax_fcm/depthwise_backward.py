"""Gradients of a depthwise convolution from one kernel (target
jax_fcm_dw_backward): the input gradient, the kernel gradient and the bias
gradient in one pass over x and dy. The fused ops' custom VJPs use it for
their depthwise half; XLA runs the same as two cuDNN calls, and for some
shapes (many channels, 7x7 float32) picks algorithms 10-40x slower."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jax_fcm import _args, _batching, _ffi, gpu
from jax_fcm.reference import depthwise_conv

TILE = 8       # output pixels per tile side (cuda_src/dw_backward_kernel.cuh)
CHANNELS = 32  # channels per block


def supported(k: int, padding: _args.Padding) -> bool:
    """The kernel handles padding of at most k - 1 on every side (any larger
    pads only zeros that no gradient reaches)."""
    return all(0 <= p < k for pair in padding for p in pair)


def pays_off_on_gpu(k: int, stride: int, ho: int, wo: int, dtype) -> bool:
    """Whether the kernel made dw_pw's training step faster than the lax
    backward on the H100 (same-run A/B over the layer suite at N = 64,
    docs/data/train_ab_h100_92431fd.txt): with stride 2 (0.78-0.82x the time),
    on 7x7 maps (0.89-0.90x) and for float32 7x7 kernels (0.26x: cuDNN's FFT
    weight gradient); on stride-1 MobileNet layers in bf16 it was 1.02-1.14x
    slower, so those keep the lax backward."""
    return stride == 2 or ho * wo <= 49 or (k == 7 and jnp.dtype(dtype) == jnp.float32)


def use_kernel(k: int, stride: int, padding: _args.Padding, ho: int, wo: int, dtype) -> bool:
    """Whether a custom VJP takes this kernel for its depthwise half: where
    the padding allows, always off the GPU (the C++ handler, which the CPU
    tests exercise), and on a GPU where it measured faster (pays_off_on_gpu)."""
    return supported(k, padding) and (jax.default_backend() != "gpu"
                                      or pays_off_on_gpu(k, stride, ho, wo, dtype))


def groups_for(n: int, ho: int, wo: int, c: int, sm_count: int) -> int:
    """Blocks per image and 32-channel slice: ~16 per SM in all (several
    waves, so the last one's tail is short), at most one per 8 x 8 output
    tile. Each writes its own row of weight gradient partial sums (no atomics:
    the sum is deterministic)."""
    tiles = math.ceil(ho / TILE) * math.ceil(wo / TILE)
    per_image = math.ceil(16 * sm_count / (max(n, 1) * math.ceil(c / CHANNELS)))
    return max(1, min(tiles, per_image))


def _ffi_call(stride: int, padding: _args.Padding, groups: int, x, dy, kernel):
    n, _, _, c = x.shape
    k = kernel.shape[0]
    out_types = (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct((n, groups, k * k + 1, c), jnp.float32))
    call = jax.ffi.ffi_call(_ffi.DW_BACKWARD_TARGET, out_types)
    return call(x, dy, kernel, stride=np.int64(stride), pad_top=np.int64(padding[0][0]),
                pad_bottom=np.int64(padding[0][1]), pad_left=np.int64(padding[1][0]),
                pad_right=np.int64(padding[1][1]))


@functools.lru_cache(maxsize=None)
def _batched_ffi_call(stride: int, padding: _args.Padding, groups: int):
    return _batching.batch_parallel(functools.partial(_ffi_call, stride, padding, groups), weight_ranks=(4,),
                                    activations=2, outputs=2)


def _reference(stride, padding, x, dy, kernel):
    """The same three gradients through lax (the transpose of the depthwise conv)."""
    zero_bias = jnp.zeros(x.shape[-1], x.dtype)
    conv = functools.partial(depthwise_conv, stride=stride, padding=padding, activation="none", precision=None)
    _, vjp = jax.vjp(conv, x, kernel, zero_bias)
    return vjp(dy)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _gradients(stride, padding, x, dy, kernel):
    n, _, _, c = x.shape
    k = kernel.shape[0]
    groups = 1
    if jax.default_backend() == "gpu":
        groups = groups_for(n, dy.shape[1], dy.shape[2], c, gpu.detect("gpu").sm_count)
    dx, partials = _batched_ffi_call(stride, padding, groups)(x, dy, kernel)
    sums = partials.sum(axis=(0, 1))
    return dx, sums[: k * k].reshape(k, k, 1, c).astype(x.dtype), sums[k * k].astype(x.dtype)


def _gradients_fwd(stride, padding, x, dy, kernel):
    return _gradients(stride, padding, x, dy, kernel), (x, dy, kernel)


def _gradients_bwd(stride, padding, residuals, cotangents):
    # The gradients are bilinear in (x, kernel) and dy: differentiate the lax form.
    _, vjp = jax.vjp(functools.partial(_reference, stride, padding), *residuals)
    return vjp(cotangents)


_gradients.defvjp(_gradients_fwd, _gradients_bwd)


def depthwise_gradients(x, dy, kernel, *, stride: int, padding: _args.Padding):
    """Gradients of ``depthwise_conv(x, kernel) + bias`` for the output cotangent dy.

    Args:
      x: (N, H, W, C); dy: (N, Ho, Wo, C); kernel: (k, k, 1, C), all one dtype.
      stride: 1 or 2; padding: ((top, bottom), (left, right)), each at most k - 1.

    Returns:
      (dx, dkernel, dbias) in x's dtype; the kernel and bias gradients are
      summed in float32 before the final rounding.
    """
    if not supported(kernel.shape[0], padding):
        raise ValueError(f"padding {padding} exceeds k - 1 = {kernel.shape[0] - 1} on some side")
    return _gradients(stride, padding, x, dy, kernel)
