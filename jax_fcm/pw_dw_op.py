"""`jax_fcm.pw_dw`: a 1x1 convolution (expansion) -> activation -> k x k
depthwise convolution -> activation in one kernel whose expanded tensor never
reaches global memory: the first half of an inverted residual, for blocks
whose projection cannot join it (a squeeze-excite or a norm between the
depthwise conv and the projection: EfficientNet, MobileNetV3)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax_fcm import _args, _batching, _ffi, _kernel_call, gpu, mbconv_config, planner
from jax_fcm.activations import activation_code, normalize_activation
from jax_fcm.depthwise_op import depthwise
from jax_fcm.reference import pointwise_conv, pw_dw_reference

IMPLEMENTATIONS = (None, "fused", "split", "xla")


@dataclasses.dataclass(frozen=True)
class _Static:
    """Everything about a call that is not an array: hashable for custom_vjp."""

    stride: int
    padding: _args.Padding
    pw_activation: str
    dw_activation: str
    precision: lax.Precision

    def reference(self, x, pw_kernel, pw_bias, dw_kernel, dw_bias):
        return pw_dw_reference(x, pw_kernel, pw_bias, dw_kernel, dw_bias, stride=self.stride, padding=self.padding,
                               pw_activation=self.pw_activation, dw_activation=self.dw_activation,
                               precision=self.precision)


def _ffi_call(st: _Static, x, pw_kernel, pw_bias, dw_kernel, dw_bias):
    n, h, w, _ = x.shape
    k = dw_kernel.shape[0]
    ho = _args.output_size(h, k, st.stride, st.padding[0])
    wo = _args.output_size(w, k, st.stride, st.padding[1])
    out_type = jax.ShapeDtypeStruct((n, ho, wo, pw_kernel.shape[-1]), x.dtype)
    call = jax.ffi.ffi_call(_ffi.PW_DW_TARGET, out_type)
    return call(
        x, pw_kernel, pw_bias, dw_kernel, dw_bias,
        stride=np.int64(st.stride),
        pad_top=np.int64(st.padding[0][0]), pad_bottom=np.int64(st.padding[0][1]),
        pad_left=np.int64(st.padding[1][0]), pad_right=np.int64(st.padding[1][1]),
        pw_activation=np.int64(activation_code(st.pw_activation)),
        dw_activation=np.int64(activation_code(st.dw_activation)),
        pw_math=np.int64(1 if _args.full_fp32(st.precision) else 0),
    )


# vmap / batch-sharding rules per call description; the backward is XLA's
# backward of the reference (it recomputes the expanded tensor).
_fused = _kernel_call.with_reference_backward(_batching.per_call_description(_ffi_call, weight_ranks=(4, 1, 4, 1)))


def kernel_refusal(k: int, stride: int, cin: int, dtype) -> str | None:
    """Why the fused kernel cannot take this call on the current backend
    (None: it can): a block holds x's whole input window, every input
    channel, in shared memory."""
    if jax.default_backend() != "gpu":
        return None
    need = mbconv_config.smem_bytes(mbconv_config.MbconvConfig(tile_n=32), k=k, stride=stride, cin=cin,
                                    itemsize=jnp.dtype(dtype).itemsize, project=False)
    limit = gpu.detect("gpu").smem_per_block
    if need > limit:
        return (f"pw_dw's kernel with Cin={cin}, k={k}, stride={stride} needs {need} bytes of shared memory per block "
                f"(x's input window holds every input channel); this GPU allows {limit}. Use implementation=None, "
                "'split' or 'xla'.")
    return None


def fused_where_it_fits(k: int, stride: int, cin: int, dtype) -> str:
    """"fused" where the kernel takes the call, else "split": the path of
    callers that want the kernel wherever it can run (the Flax layers'
    fused=True, the benchmark's fused rows)."""
    return "split" if kernel_refusal(k, stride, cin, dtype) else "fused"


def pw_dw(
    x,
    pw_kernel,
    dw_kernel,
    pw_bias=None,
    dw_bias=None,
    *,
    strides=1,
    padding="SAME",
    pw_activation=None,
    dw_activation=None,
    precision=None,
    implementation=None,
):
    """Fused pointwise -> depthwise convolution, NHWC.

    Computes ``act_dw(depthwise(act_pw(conv1x1(x) + pw_bias)) + dw_bias)`` with
    the pointwise result kept on chip. Each 8x8 tile of outputs recomputes the
    pointwise conv over its input window (the halo its neighbours also
    compute) instead of exchanging it.

    Args:
      x: ``(..., N, H, W, Cin)``; extra leading axes are folded into the batch.
      pw_kernel: ``(1, 1, Cin, Cmid)``.
      dw_kernel: ``(k, k, 1, Cmid)``, k in {3, 5, 7}.
      pw_bias, dw_bias: ``(Cmid,)`` each, or None.
      strides: 1 or 2 (int or equal pair), of the depthwise conv.
      padding: of the depthwise conv; as in ``jax_fcm.dw_pw`` (the pointwise
        result is zero-padded, as two separate convolutions pad it).
      pw_activation, dw_activation: None, "relu", "relu6", "silu",
        "gelu_exact", "gelu_tanh" or "hard_swish".
      precision: as in lax. float32 at the default runs the 1x1 conv on TF32
        tensor cores (as XLA does); HIGH / HIGHEST in full fp32. The depthwise
        conv is fp32 arithmetic in every case.
      implementation: "fused" for the fused kernel (CUDA on GPU, C++ on CPU);
        "split" for XLA's 1x1 conv then ``jax_fcm.depthwise``; "xla" for
        both as lax convolutions; None (the default) for the fused kernel
        where ``jax_fcm.planner.pw_dw_choice`` predicts it faster than
        "split" and the kernel takes the call, else "split".

    Returns:
      ``(..., N, Ho, Wo, Cmid)`` in x's dtype (all operands must share it).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    dtype = _args.check_operands({"x": x, "pw_kernel": pw_kernel, "dw_kernel": dw_kernel},
                                 {"pw_bias": pw_bias, "dw_bias": dw_bias})
    *lead, h, w, cin = x.shape
    cmid = _args.pointwise_features(pw_kernel, cin, "pw_kernel", "(1, 1, Cin, Cmid)")
    k = _args.depthwise_kernel_size(dw_kernel, cmid, channel_name="Cmid")
    if min(cin, cmid) == 0:
        raise ValueError(f"channel counts must be positive; got Cin={cin}, Cmid={cmid}")
    for name, bias in (("pw_bias", pw_bias), ("dw_bias", dw_bias)):
        if bias is not None:
            _args.check_shape(bias, (cmid,), name, "(Cmid,)")
    stride, pads, ho, wo = _args.window(strides, padding, h, w, k)
    precision = _args.normalize_precision(precision)
    st = _Static(stride=stride, padding=pads, pw_activation=normalize_activation(pw_activation, "pw_activation"),
                 dw_activation=normalize_activation(dw_activation, "dw_activation"), precision=precision)
    tensor_cores = not (dtype == jnp.float32 and _args.full_fp32(precision))
    implementation = _args.resolve_implementation(
        implementation, kernel_refusal(k, stride, cin, dtype),
        lambda: planner.pw_dw_choice(x.shape, cmid, k, stride, dtype, tensor_cores,
                                     gpu.detect(jax.default_backend()))[0],
        kernel="fused", fallback="split")
    if implementation == "fused":
        # The kernel's 32-bit offsets: x's images, the expanded and output images, both weight matrices.
        _args.check_fused_index_range(h, w, cmid, k, cmid, ho, wo)
        if h * w * cin > _args.INT32_MAX or cin * cmid > _args.INT32_MAX:
            raise ValueError("H*W*Cin or Cin*Cmid is 2**31 elements or more, more than the fused kernel indexes; "
                             "use implementation='split' or 'xla'")

    pw_bias = jnp.zeros((cmid,), dtype) if pw_bias is None else pw_bias
    dw_bias = jnp.zeros((cmid,), dtype) if dw_bias is None else dw_bias
    x4 = x.reshape((math.prod(lead), h, w, cin))
    if implementation == "xla":
        y = st.reference(x4, pw_kernel, pw_bias, dw_kernel, dw_bias)
    elif implementation == "split":
        mid = pointwise_conv(x4, pw_kernel, pw_bias, activation=st.pw_activation, precision=precision)
        y = depthwise(mid, dw_kernel, dw_bias, strides=stride, padding=pads, activation=st.dw_activation,
                      precision=precision)
    else:
        _ffi.check_backend_supported()
        y = _fused(st, x4, pw_kernel, pw_bias, dw_kernel, dw_bias)
    return y.reshape(tuple(lead) + y.shape[1:])
