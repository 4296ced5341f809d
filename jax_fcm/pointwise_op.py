"""`jax_fcm.pointwise`: a standalone pointwise (1x1) convolution -> bias ->
activation, NHWC, in one kernel: for the 1x1 layers that stay unfused
(expansions, heads, MLPs). The GEMM over the N*H*W pixels runs on tensor
cores; at small batch a cluster of blocks splits the input channels so the
few pixel tiles still spread over the whole GPU."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax_fcm import _args, _ffi, _kernel_call, planner
from jax_fcm.activations import activation_code, normalize_activation
from jax_fcm.reference import pointwise_conv

IMPLEMENTATIONS = (None, "kernel", "xla")



@dataclasses.dataclass(frozen=True)
class _Static:
    """Everything about a call that is not an array: hashable for custom_vjp."""

    activation: str
    precision: lax.Precision

    def reference(self, x, kernel, bias):
        return pointwise_conv(x, kernel, bias, activation=self.activation, precision=self.precision)


def _ffi_call(st: _Static, x, kernel, bias):
    out_type = jax.ShapeDtypeStruct(x.shape[:3] + (kernel.shape[-1],), x.dtype)
    call = jax.ffi.ffi_call(_ffi.POINTWISE_TARGET, out_type)
    return call(x, kernel, bias, activation=np.int64(activation_code(st.activation)),
                pw_math=np.int64(1 if _args.full_fp32(st.precision) else 0))


# The FFI call with vmap and batch-sharding rules and a custom VJP: the
# linear part's gradients are two GEMMs (g . W^T and x^T . g) and a sum, XLA's own.
_call = _kernel_call.differentiable_kernel_call(_ffi_call)


def pointwise(x, kernel, bias=None, *, activation=None, precision=None, implementation=None):
    """Pointwise (1x1) convolution -> bias -> activation, NHWC, in one kernel.

    The same as ``lax.conv_general_dilated(x, kernel, (1, 1), "VALID",
    dimension_numbers=("NHWC", "HWIO", "NHWC"))`` followed by ``+ bias`` and
    the activation (Flax: ``nn.Conv(Cout, (1, 1))``).

    Args:
      x: ``(..., N, H, W, Cin)``; extra leading axes are folded into the batch.
      kernel: ``(1, 1, Cin, Cout)``.
      bias: ``(Cout,)`` or None.
      activation: None, "relu", "relu6", "silu", "gelu_exact", "gelu_tanh" or
        "hard_swish".
      precision: as in lax. For float32 the default runs the GEMM on TF32
        tensor cores on the GPU (as XLA does); "high"/"highest" ask for full
        fp32. bfloat16/float16 multiply on tensor cores and accumulate in fp32.
        The CPU handler always computes in fp32.
      implementation: None (the default) runs the jax_fcm kernel where
        ``jax_fcm.planner.use_pointwise_kernel`` says it measured faster than
        XLA's 1x1 convolution on this GPU, else XLA's; "kernel" always runs the
        jax_fcm kernel (CUDA on GPU, C++ on CPU); "xla" the same math as
        plain lax ops.

    Returns:
      ``(..., N, H, W, Cout)`` in x's dtype (kernel and bias must share it).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    dtype = _args.check_operands({"x": x, "kernel": kernel}, {"bias": bias})
    *lead, h, w, cin = x.shape
    cout = _args.pointwise_features(kernel, cin, "kernel", "(1, 1, Cin, Cout)")
    if cin == 0 or cout == 0:
        raise ValueError(f"channel counts must be positive; got Cin={cin}, Cout={cout}")
    if bias is not None:
        _args.check_shape(bias, (cout,), "bias", "(Cout,)")
    fits = max(cin * cout, 128 * cin, 128 * cout) <= _args.INT32_MAX
    refusal = None if fits else (f"Cin*Cout = {cin * cout} (or 128*Cin, 128*Cout) is more than the kernel indexes "
                                 "(2**31 - 1); use implementation='xla'")
    implementation = _args.resolve_implementation(
        implementation, refusal, lambda: planner.use_pointwise_kernel(x.shape, cout, dtype))
    st = _Static(activation=normalize_activation(activation, "activation"),
                 precision=_args.normalize_precision(precision))
    return _kernel_call.run(_call, st, x, kernel, bias, implementation)


def pointwise_plan(dtype, pixels: int, cin: int, cout: int, *, sm_count: int, clusters: bool = True,
                   wgmma: bool = False) -> dict:
    """How the CUDA kernel lays out a call of `pixels` (N*H*W) x Cin -> Cout
    on a GPU with `sm_count` SMs: {"tile_m", "tile_n", "channel_chunk",
    "splits", "wgmma", "blocks_per_sm"} (pixels and output channels per
    block, input channels per step, blocks per cluster splitting the input
    channels, whether the Hopper warpgroup-MMA kernel runs it, and how many of
    its blocks an SM holds). `wgmma`: the GPU is a Hopper (compute
    capability 9.x) and the extension was built for sm_90a (the default
    architectures). The same C++ function the launcher runs."""
    dtype = jnp.dtype(dtype)
    if dtype not in _ffi.ELEMENT_TYPES:
        raise TypeError(f"dtype must be float32, bfloat16 or float16; got {dtype.name}")
    return dict(_ffi.native().pointwise_plan(_ffi.ELEMENT_TYPES[dtype], pixels, cin, cout, sm_count, clusters, wgmma))
