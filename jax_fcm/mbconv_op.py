"""`jax_fcm.mbconv`: the inverted-residual (MBConv) block of MobileNetV2 /
EfficientNet / MobileViT — 1x1 expand -> activation -> k x k depthwise ->
activation -> linear 1x1 project (+ x) — in one kernel whose expanded tensor
never reaches global memory."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax_fcm import _args, _batching, _ffi, _kernel_call, gpu, mbconv_config
from jax_fcm.activations import activation_code, normalize_activation
from jax_fcm.dw_pw_op import dw_pw
from jax_fcm.mbconv_config import MbconvConfig
from jax_fcm.reference import mbconv_reference

IMPLEMENTATIONS = (None, "fused", "xla")


@dataclasses.dataclass(frozen=True)
class _Static:
    """Everything about a call that is not an array: hashable for custom_vjp."""

    stride: int
    padding: _args.Padding
    activation: str
    residual: bool
    precision: lax.Precision
    config: MbconvConfig

    def reference(self, x, expand_kernel, expand_bias, dw_kernel, dw_bias, project_kernel, project_bias):
        return mbconv_reference(x, expand_kernel, expand_bias, dw_kernel, dw_bias, project_kernel, project_bias,
                                stride=self.stride, padding=self.padding, activation=self.activation,
                                residual=self.residual, precision=self.precision)


def _ffi_call(st: _Static, x, expand_kernel, expand_bias, dw_kernel, dw_bias, project_kernel, project_bias):
    n, h, w, _ = x.shape
    k = dw_kernel.shape[0]
    ho = _args.output_size(h, k, st.stride, st.padding[0])
    wo = _args.output_size(w, k, st.stride, st.padding[1])
    out_type = jax.ShapeDtypeStruct((n, ho, wo, project_kernel.shape[-1]), x.dtype)
    full_fp32 = _args.full_fp32(st.precision)
    call = jax.ffi.ffi_call(_ffi.MBCONV_TARGET, out_type)
    return call(
        x, expand_kernel, expand_bias, dw_kernel, dw_bias, project_kernel, project_bias,
        stride=np.int64(st.stride),
        pad_top=np.int64(st.padding[0][0]), pad_bottom=np.int64(st.padding[0][1]),
        pad_left=np.int64(st.padding[1][0]), pad_right=np.int64(st.padding[1][1]),
        activation=np.int64(activation_code(st.activation)),
        residual=np.int64(st.residual),
        pw_math=np.int64(1 if full_fp32 else 0),
        tile_n=np.int64(st.config.tile_n),
        channel_splits=np.int64(st.config.channel_splits),
    )


# The FFI call with vmap and batch-sharding rules, per call description.
_batched_ffi_call = _batching.per_call_description(_ffi_call, weight_ranks=(4, 1, 4, 1, 4, 1))


# The reference backward (XLA) recomputes the expanded tensor.
_fused = _kernel_call.with_reference_backward(_batched_ffi_call)


def fits(x_shape, cmid: int, cout: int, k: int, stride: int, dtype, config: MbconvConfig | None = None) -> bool:
    """Whether the fused kernel runs this block on the current backend (a
    block's shared memory fits the GPU; always on CPU), as mbconv would call
    it (default config unless given). Layers that could take another path ask
    this first."""
    *lead, h, w, cin = x_shape
    if config is None:
        ho, wo = -(-h // stride), -(-w // stride)
        config = mbconv_config.choose_config(math.prod(lead) or 1, ho, wo, cmid, cout,
                                             gpu.detect(jax.default_backend()).sm_count)
    return _fits_gpu(config, k, stride, cin, dtype, required=False)


def _fits_gpu(config: MbconvConfig, k: int, stride: int, cin: int, dtype, *, required: bool) -> bool:
    """Whether a block's shared memory fits the GPU (always on CPU). With
    required (implementation="fused") a miss is a ValueError."""
    if jax.default_backend() != "gpu":
        return True
    spec = gpu.detect("gpu")
    need = mbconv_config.smem_bytes(config, k=k, stride=stride, cin=cin, itemsize=jnp.dtype(dtype).itemsize)
    if need > spec.smem_per_block and required:
        raise ValueError(f"mbconv with Cin={cin}, k={k}, stride={stride} needs {need} bytes of shared memory per "
                         f"block (x's input window holds every input channel); this GPU allows "
                         f"{spec.smem_per_block}. Use implementation=None or 'xla'.")
    return need <= spec.smem_per_block


def mbconv(
    x,
    expand_kernel,
    dw_kernel,
    project_kernel,
    expand_bias=None,
    dw_bias=None,
    project_bias=None,
    *,
    strides=1,
    padding="SAME",
    activation="relu6",
    residual=True,
    precision=None,
    implementation=None,
    config: MbconvConfig | None = None,
):
    """Fused inverted-residual block, NHWC.

    Computes ``project(act(depthwise(act(expand(x) + expand_bias)) + dw_bias)) +
    project_bias (+ x)`` with the expanded tensor kept on chip.

    Args:
      x: ``(..., N, H, W, Cin)``; extra leading axes are folded into the batch.
      expand_kernel: ``(1, 1, Cin, Cmid)``, or None for expansion factor 1 (then
        Cmid = Cin and the block is ``jax_fcm.dw_pw`` plus the residual).
      dw_kernel: ``(k, k, 1, Cmid)``, k in {3, 5, 7}.
      project_kernel: ``(1, 1, Cmid, Cout)``; the projection is linear.
      expand_bias, dw_bias, project_bias: ``(Cmid,)``, ``(Cmid,)``, ``(Cout,)``
        or None (expand_bias must be None without expand_kernel).
      strides: 1 or 2 (int or equal pair), of the depthwise conv.
      padding: of the depthwise conv; as in ``jax_fcm.dw_pw``.
      activation: after the expansion and after the depthwise conv: None,
        "relu", "relu6" (MobileNetV2, the default), "silu" (EfficientNet),
        "gelu_exact", "gelu_tanh" or "hard_swish".
      residual: add x to the output. Needs stride 1, Cin == Cout and an output
        the size of the input (a ValueError otherwise).
      precision: as in lax. float32 at the default runs both 1x1 convolutions
        on TF32 tensor cores (as XLA does); HIGH / HIGHEST in full fp32.
      implementation: "fused" for the fused kernel (CUDA on GPU, C++ on CPU);
        "xla" for the same math as plain lax ops; None (the default) for the
        fused kernel wherever it fits, and the XLA path for the few shapes
        whose input window does not fit in a block's shared memory (float32
        with Cin >= ~90 at stride 2 on an H100), where "fused" raises.
      config: a ``jax_fcm.MbconvConfig``; None picks one from the shapes and
        the GPU's SM count (``jax_fcm.mbconv_config.choose_config``).

    Returns:
      ``(..., N, Ho, Wo, Cout)`` in x's dtype (all operands must share it).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    arrays = {"x": x, "dw_kernel": dw_kernel, "project_kernel": project_kernel}
    if expand_kernel is not None:
        arrays["expand_kernel"] = expand_kernel
    dtype = _args.check_operands(arrays, {"expand_bias": expand_bias, "dw_bias": dw_bias,
                                          "project_bias": project_bias})
    *lead, h, w, cin = x.shape
    if expand_kernel is None:
        if expand_bias is not None:
            raise ValueError("expand_bias needs an expand_kernel (expansion factor 1 has no expansion)")
        cmid = cin
    else:
        cmid = _args.pointwise_features(expand_kernel, cin, "expand_kernel", "(1, 1, Cin, Cmid)")
    k = _args.depthwise_kernel_size(dw_kernel, cmid, channel_name="Cmid")
    cout = _args.pointwise_features(project_kernel, cmid, "project_kernel", "(1, 1, Cmid, Cout)")
    if min(cin, cmid, cout) == 0:
        raise ValueError(f"channel counts must be positive; got Cin={cin}, Cmid={cmid}, Cout={cout}")
    for name, bias, size, what in (("expand_bias", expand_bias, cmid, "(Cmid,)"), ("dw_bias", dw_bias, cmid, "(Cmid,)"),
                                   ("project_bias", project_bias, cout, "(Cout,)")):
        if bias is not None:
            _args.check_shape(bias, (size,), name, what)
    stride, pads, ho, wo = _args.window(strides, padding, h, w, k)
    if not isinstance(residual, bool):
        raise TypeError(f"residual must be a bool; got {residual!r}")
    if residual and (stride != 1 or cin != cout or (ho, wo) != (h, w)):
        raise ValueError(f"residual=True needs stride 1, Cin == Cout and an output the size of the input; got "
                         f"stride {stride}, Cin={cin}, Cout={cout}, input {h}x{w} -> output {ho}x{wo}")
    activation = normalize_activation(activation, "activation")
    precision = _args.normalize_precision(precision)
    if config is not None and not isinstance(config, MbconvConfig):
        raise TypeError(f"config must be a jax_fcm.MbconvConfig or None; got {type(config).__name__}")

    if expand_kernel is None:  # expansion factor 1: the fused DW->PW op, plus the residual
        if config is not None:
            raise ValueError("config applies to the expanding kernel; without expand_kernel the block runs "
                             "jax_fcm.dw_pw with its own tile choice")
        y = dw_pw(x, dw_kernel, project_kernel, dw_bias, project_bias, strides=stride, padding=pads,
                  dw_activation=activation, pw_activation=None, precision=precision, implementation=implementation)
        return y + x if residual else y

    if implementation != "xla":
        _args.check_fused_index_range(h, w, cmid, k, cout, ho, wo)
        if h * w * cin > _args.INT32_MAX or cin * cmid > _args.INT32_MAX:
            raise ValueError("H*W*Cin or Cin*Cmid is 2**31 elements or more, more than the fused kernels index; "
                             "use implementation='xla'")
    config = config or mbconv_config.choose_config(math.prod(lead) or 1, ho, wo, cmid, cout,
                                                   gpu.detect(jax.default_backend()).sm_count)
    st = _Static(stride=stride, padding=pads, activation=activation, residual=residual, precision=precision,
                 config=config)
    expand_bias = jnp.zeros((cmid,), dtype) if expand_bias is None else expand_bias
    dw_bias = jnp.zeros((cmid,), dtype) if dw_bias is None else dw_bias
    project_bias = jnp.zeros((cout,), dtype) if project_bias is None else project_bias
    x4 = x.reshape((math.prod(lead), h, w, cin))
    operands = (x4, expand_kernel, expand_bias, dw_kernel, dw_bias, project_kernel, project_bias)
    if implementation == "xla" or not _fits_gpu(config, k, stride, cin, dtype, required=implementation == "fused"):
        y = st.reference(*operands)
    else:
        _ffi.check_backend_supported()
        y = _fused(st, *operands)
    return y.reshape(tuple(lead) + y.shape[1:])
