"""`jax_fcm.pw_pw_int8`: two 1x1 convolutions in int8 (the scheme of
jax_fcm.quantization) in one kernel: int8 tensor cores for both GEMMs, int32
sums, the intermediate requantized to int8 in registers between them."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax_fcm import _args, _batching, _ffi, pw_pw_op, quantization
from jax_fcm.quantization import QuantizedPwPw, requantize

IMPLEMENTATIONS = (None, "fused", "xla")

# The widest input the kernel takes (C++ pw_pw_max_cin for int8: 384 bytes of
# input row per pixel, as for 16-bit types).
MAX_CIN = pw_pw_op.MAX_CIN[jnp.dtype(jnp.int8)]


def pw_pw_int8_reference(x, q: QuantizedPwPw):
    """The same integer math as plain lax ops (any backend, bit-exact): two
    int8 x int8 -> int32 dots, each requantized."""
    dims = (((3,), (1,)), ((), ()))
    mid = lax.dot_general(x, q.pw1_kernel, dims, preferred_element_type=jnp.int32)
    mid = requantize(mid + q.pw1_bias, q.pw1_multiplier, *q.pw1_clamp)
    out = lax.dot_general(mid, q.pw2_kernel, dims, preferred_element_type=jnp.int32)
    return requantize(out + q.pw2_bias, q.pw2_multiplier, *q.pw2_clamp)


@dataclasses.dataclass(frozen=True)
class _Static:
    """The call's non-array description (hashable: one batching wrapper each)."""

    pw1_clamp: tuple[int, int]
    pw2_clamp: tuple[int, int]


def _ffi_call(st: _Static, x, w1, b1, m1, w2, b2, m2):
    call = jax.ffi.ffi_call(_ffi.PW_PW_INT8_TARGET, jax.ShapeDtypeStruct(x.shape[:3] + (w2.shape[0],), jnp.int8))
    return call(x, w1, b1, m1, w2, b2, m2,
                pw1_qmin=np.int64(st.pw1_clamp[0]), pw1_qmax=np.int64(st.pw1_clamp[1]),
                pw2_qmin=np.int64(st.pw2_clamp[0]), pw2_qmax=np.int64(st.pw2_clamp[1]))


# The FFI call with vmap and batch-sharding rules, per call description.
_batched_ffi_call = _batching.per_call_description(_ffi_call, weight_ranks=(2, 1, 1, 2, 1, 1))


def _check_params(q, cin: int) -> tuple[int, int]:
    """(hidden, Cout) of a QuantizedPwPw for Cin input channels, or a clear error."""
    quantization.check_int8_params(q, QuantizedPwPw, {"pw1_kernel": jnp.int8, "pw1_bias": jnp.int32,
                                                      "pw1_multiplier": jnp.float32, "pw2_kernel": jnp.int8,
                                                      "pw2_bias": jnp.int32, "pw2_multiplier": jnp.float32},
                                   ("pw1_clamp", "pw2_clamp"))
    if q.pw1_kernel.ndim != 2 or q.pw1_kernel.shape[1] != cin:
        raise ValueError(f"params.pw1_kernel must be (hidden, Cin={cin}); got shape {tuple(q.pw1_kernel.shape)}")
    hidden = q.pw1_kernel.shape[0]
    if q.pw2_kernel.ndim != 2 or q.pw2_kernel.shape[1] != hidden:
        raise ValueError(f"params.pw2_kernel must be (Cout, hidden={hidden}); got shape "
                         f"{tuple(q.pw2_kernel.shape)}")
    cout = q.pw2_kernel.shape[0]
    _args.check_shape(q.pw1_bias, (hidden,), "params.pw1_bias", "(hidden,)")
    _args.check_shape(q.pw1_multiplier, (hidden,), "params.pw1_multiplier", "(hidden,)")
    _args.check_shape(q.pw2_bias, (cout,), "params.pw2_bias", "(Cout,)")
    _args.check_shape(q.pw2_multiplier, (cout,), "params.pw2_multiplier", "(Cout,)")
    return hidden, cout


def pw_pw_int8(x, params: QuantizedPwPw, *, implementation=None):
    """Two fused int8 pointwise (1x1) convolutions, NHWC.

    ``q_mid = requant(x @ pw1 + pw1_bias)``, ``y = requant(q_mid @ pw2 + pw2_bias)``
    with int32 sums and the intermediate kept on chip (the scheme, with the
    ReLU/ReLU6 clamps, is in ``jax_fcm.quantization``).

    Args:
      x: int8 ``(..., N, H, W, Cin)`` at ``params.input_scale``
        (``jax_fcm.quantization.quantize(x_float, params.input_scale)``).
      params: a ``jax_fcm.quantization.QuantizedPwPw`` (``quantize_pw_pw``).
      implementation: None: the fused kernel (CUDA on GPU, C++ on CPU) where
        it takes the call (Cin up to 384), else the lax integer math;
        "fused": the kernel, an error where it does not take the call;
        "xla": the same integer math as plain lax ops (bit-exact).

    Returns:
      int8 ``(..., N, H, W, Cout)`` at ``params.output_scale``.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    quantization.check_int8_input(x)
    *lead, h, w, cin = x.shape
    hidden, cout = _check_params(params, cin)
    if min(cin, hidden, cout) == 0:
        raise ValueError(f"channel counts must be positive; got Cin={cin}, hidden={hidden}, Cout={cout}")
    refusal = pw_pw_op.kernel_refusal(jnp.int8, cin, hidden, cout)
    implementation = _args.resolve_implementation(
        implementation, refusal and refusal + "; implementation=None runs the lax integer math instead",
        lambda: True, kernel="fused")
    x4 = x.reshape((math.prod(lead), h, w, cin))
    if implementation == "xla":
        y = pw_pw_int8_reference(x4, params)
    else:
        _ffi.check_backend_supported()
        st = _Static(pw1_clamp=tuple(params.pw1_clamp), pw2_clamp=tuple(params.pw2_clamp))
        y = _batched_ffi_call(st)(x4, params.pw1_kernel, params.pw1_bias, params.pw1_multiplier, params.pw2_kernel,
                                  params.pw2_bias, params.pw2_multiplier)
    return y.reshape(tuple(lead) + y.shape[1:])
