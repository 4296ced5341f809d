"""`jax_fcm.pw_pw`: two pointwise (1x1) convolutions in one kernel, the
intermediate kept on chip: act2(act1(x . w1 + b1) . w2 + b2), NHWC. The MLP
of ConvNeXt and MobileViT blocks (C -> 4C -> C), or an inverted-residual
block's projection followed by the next block's expansion. Run as two
convolutions, the (often 4x wider) intermediate is written to and read back
from global memory; here it goes from one tensor-core MMA's accumulators
straight into the next one's operands."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax_fcm import _args, _batching, _ffi, planner
from jax_fcm._kernel_call import with_reference_backward
from jax_fcm.activations import activation_code, normalize_activation
from jax_fcm.reference import pw_pw_reference

IMPLEMENTATIONS = (None, "kernel", "xla")

# The widest input the kernel takes per dtype: the C++ pw_pw_max_cin
# (cuda_src/pw_pw_params.h: a block's input rows and a double-buffered slice
# of pw1_kernel must fit in one block's shared memory on an A100 as well as an H100).
# int8: jax_fcm.pw_pw_int8's instances of the same kernel.
MAX_CIN = {dtype: _ffi.native().pw_pw_max_cin(code)
           for dtype, code in {**_ffi.ELEMENT_TYPES, jnp.dtype(jnp.int8): _ffi.INT8_ELEMENT_TYPE}.items()}


@dataclasses.dataclass(frozen=True)
class _Static:
    """Everything about a call that is not an array: hashable for custom_vjp."""

    pw1_activation: str
    pw2_activation: str
    precision: lax.Precision

    def reference(self, x, w1, b1, w2, b2):
        return pw_pw_reference(x, w1, b1, w2, b2, pw1_activation=self.pw1_activation,
                               pw2_activation=self.pw2_activation, precision=self.precision)


def _ffi_call(st: _Static, x, w1, b1, w2, b2):
    out_type = jax.ShapeDtypeStruct(x.shape[:3] + (w2.shape[-1],), x.dtype)
    call = jax.ffi.ffi_call(_ffi.PW_PW_TARGET, out_type)
    return call(x, w1, b1, w2, b2, pw1_activation=np.int64(activation_code(st.pw1_activation)),
                pw2_activation=np.int64(activation_code(st.pw2_activation)))


_batched_ffi_call = _batching.per_call_description(_ffi_call, weight_ranks=(4, 1, 4, 1))


# XLA's backward of the two convolutions recomputes the intermediate (the
# forward kept none) and its activation derivative.
_fused = with_reference_backward(_batched_ffi_call)


def kernel_refusal(dtype, cin: int, hidden: int, cout: int, precision=None) -> str | None:
    """Why the kernel does not take a call, or None when it does: Cin up to
    MAX_CIN for the dtype, float32 only at default precision (its GEMMs run on
    TF32 tensor cores), and sizes its 32-bit offsets reach."""
    dtype = jnp.dtype(dtype)
    if cin > MAX_CIN[dtype]:
        return f"the pw_pw kernel takes Cin <= {MAX_CIN[dtype]} for {dtype.name}; got Cin={cin}"
    precision = _args.normalize_precision(precision)
    if dtype == jnp.float32 and _args.full_fp32(precision):
        return f"the pw_pw kernel multiplies float32 on TF32 tensor cores, not at precision {precision.name}"
    if max(hidden * cout, cin * hidden, 128 * cout) > _args.INT32_MAX:
        return "the pw_pw kernel needs hidden*Cout, Cin*hidden and 128*Cout below 2**31 (32-bit offsets)"
    return None


def pw_pw(x, pw1_kernel, pw2_kernel, pw1_bias=None, pw2_bias=None, *, pw1_activation=None, pw2_activation=None,
          precision=None, implementation=None):
    """Two pointwise (1x1) convolutions, each + bias -> activation, NHWC, in
    one kernel with the intermediate on chip.

    The same as ``pointwise(pointwise(x, pw1_kernel, pw1_bias,
    activation=pw1_activation), pw2_kernel, pw2_bias, activation=pw2_activation)``
    (Flax: ``nn.Conv(hidden, (1, 1))`` -> activation -> ``nn.Conv(Cout, (1, 1))``,
    or two ``nn.Dense`` on the channel axis).

    Args:
      x: ``(..., N, H, W, Cin)``; extra leading axes are folded into the batch.
      pw1_kernel: ``(1, 1, Cin, hidden)``.
      pw2_kernel: ``(1, 1, hidden, Cout)``.
      pw1_bias: ``(hidden,)`` or None; pw2_bias: ``(Cout,)`` or None.
      pw1_activation, pw2_activation: None, "relu", "relu6", "silu",
        "gelu_exact", "gelu_tanh" or "hard_swish".
      precision: as in lax. The kernel multiplies bfloat16/float16 on tensor
        cores with fp32 accumulation, float32 on TF32 tensor cores (lax's
        default precision on the GPU); the CPU handler computes in fp32.
      implementation: None: the kernel where it takes the call and
        jax_fcm.planner.use_pw_pw_kernel says it measured faster than XLA's
        two convolutions (16-bit types, little tensor-core work per pixel),
        else XLA's. "kernel": the jax_fcm kernel (CUDA on GPU, C++ on CPU),
        an error where it does not take the call (Cin above 192 for 16-bit
        types or 96 for float32, float32 at HIGH/HIGHEST precision). "xla":
        the same math as plain lax ops.

    The intermediate is rounded to x's dtype after act1 (to TF32 for float32
    on the GPU), as two separate convolutions round it.

    Returns:
      ``(..., N, H, W, Cout)`` in x's dtype (weights and biases must share it).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    dtype = _args.check_operands({"x": x, "pw1_kernel": pw1_kernel, "pw2_kernel": pw2_kernel},
                                 {"pw1_bias": pw1_bias, "pw2_bias": pw2_bias})
    *lead, h, w, cin = x.shape
    hidden = _args.pointwise_features(pw1_kernel, cin, "pw1_kernel", "(1, 1, Cin, hidden)")
    cout = _args.pointwise_features(pw2_kernel, hidden, "pw2_kernel", "(1, 1, hidden, Cout)")
    if min(cin, hidden, cout) == 0:
        raise ValueError(f"channel counts must be positive; got Cin={cin}, hidden={hidden}, Cout={cout}")
    if pw1_bias is not None:
        _args.check_shape(pw1_bias, (hidden,), "pw1_bias", "(hidden,)")
    if pw2_bias is not None:
        _args.check_shape(pw2_bias, (cout,), "pw2_bias", "(Cout,)")
    st = _Static(pw1_activation=normalize_activation(pw1_activation, "pw1_activation"),
                 pw2_activation=normalize_activation(pw2_activation, "pw2_activation"),
                 precision=_args.normalize_precision(precision))
    refusal = kernel_refusal(dtype, cin, hidden, cout, st.precision)
    implementation = _args.resolve_implementation(
        implementation, refusal and refusal + "; implementation=None runs XLA's two convolutions instead",
        lambda: planner.use_pw_pw_kernel(x.shape, hidden, cout, dtype))
    b1 = jnp.zeros((hidden,), dtype) if pw1_bias is None else pw1_bias
    b2 = jnp.zeros((cout,), dtype) if pw2_bias is None else pw2_bias
    x4 = x.reshape((math.prod(lead), h, w, cin))
    if implementation == "xla":
        y = st.reference(x4, pw1_kernel, b1, pw2_kernel, b2)
    else:
        _ffi.check_backend_supported()
        y = _fused(st, x4, pw1_kernel, b1, pw2_kernel, b2)
    return y.reshape(tuple(lead) + y.shape[1:])
