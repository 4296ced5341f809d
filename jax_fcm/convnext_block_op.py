"""`jax_fcm.convnext_block`: a whole ConvNeXt block (Liu et al. 2022),
depthwise k x k conv -> LayerNorm over the channels -> 1x1 to the hidden
width -> GELU -> 1x1 back to C -> layer scale -> + the block's input, NHWC.

Run as XLA runs it, the block is five passes over the activations after the
depthwise conv (LayerNorm, each 1x1 - the hidden tensor 4x as wide - and the
layer-scaled residual). Here it is two kernels: jax_fcm.depthwise, then one
Hopper warpgroup-MMA kernel (the pw_pw kernel with the block's ends) that
layer-normalizes each tile of pixels in shared memory, keeps the hidden
activations on chip, and adds the layer-scaled result to the block's input in
its epilogue."""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax_fcm import _args, _batching, _ffi, _kernel_call, planner
from jax_fcm.activations import activation_code, normalize_activation
from jax_fcm.depthwise_op import depthwise
from jax_fcm.gpu import GpuSpec, detect
from jax_fcm.pw_pw_op import MAX_CIN
from jax_fcm.pw_pw_op import pw_pw as _pw_pw
from jax_fcm.reference import convnext_mlp_reference, depthwise_conv, layer_norm

IMPLEMENTATIONS = (None, "kernel", "xla")


@dataclasses.dataclass(frozen=True)
class _Static:
    """Everything about the call after the depthwise conv that is not an array."""

    activation: str
    eps: float
    precision: lax.Precision

    def reference(self, x, residual, ln_scale, ln_bias, w1, b1, w2, b2, layer_scale):
        return convnext_mlp_reference(x, residual, ln_scale, ln_bias, w1, b1, w2, b2, layer_scale,
                                      activation=self.activation, eps=self.eps, precision=self.precision)


def _ffi_call(st: _Static, x, residual, ln_scale, ln_bias, w1, b1, w2, b2, layer_scale):
    call = jax.ffi.ffi_call(_ffi.CONVNEXT_MLP_TARGET, jax.ShapeDtypeStruct(x.shape, x.dtype))
    return call(x, residual, ln_scale, ln_bias, w1, b1, w2, b2, layer_scale,
                pw1_activation=np.int64(activation_code(st.activation)), eps=np.float32(st.eps))


@functools.lru_cache(maxsize=None)
def _batched_ffi_call(st: _Static):
    # Two activations (the depthwise output and the block's input), seven weights.
    return _batching.batch_parallel(functools.partial(_ffi_call, st), weight_ranks=(1, 1, 4, 1, 4, 1, 1),
                                    activations=2)


# XLA's backward of the reference (LayerNorm, both 1x1s, the residual)
# recomputes what the kernel kept on chip.
_mlp_kernel_call = _kernel_call.with_reference_backward(_batched_ffi_call)


def kernel_refusal(dtype, c: int, hidden: int, gpu: GpuSpec | None = None) -> str | None:
    """Why the fused LayerNorm + MLP + residual kernel does not take a block
    with C channels and a hidden width, or None when it does: on the default
    backend (gpu None) or, for planning, on a described GPU. The CPU handler
    takes every block; on a GPU it is the Hopper warpgroup-MMA kernel:
    bfloat16/float16, C and hidden multiples of 8, C <= 192 (a tile's pixel
    rows stay in shared memory), a compute capability 9.x device and (when
    running) an sm_90a build."""
    if max(c * hidden, 128 * c) > _args.INT32_MAX:
        return "the convnext_block kernel needs C*hidden and 128*C below 2**31 (32-bit offsets)"
    running = gpu is None
    if running and jax.default_backend() != "gpu":
        return None
    dtype = jnp.dtype(dtype)
    if dtype == jnp.float32:
        return "the convnext_block kernel runs on Hopper's wgmma, which takes bfloat16 or float16, not float32"
    if c % 8 or hidden % 8:
        return f"the convnext_block kernel needs C and hidden multiples of 8; got C={c}, hidden={hidden}"
    if c > MAX_CIN[dtype]:
        return f"the convnext_block kernel takes C <= {MAX_CIN[dtype]} (a tile's rows in shared memory); got C={c}"
    gpu = gpu or detect()
    if not gpu.wgmma or (running and not _ffi.native().built_with_wgmma):
        return "the convnext_block kernel needs a Hopper GPU (compute capability 9.x) and an sm_90a build of jax_fcm"
    return None


def convnext_block(x, dw_kernel, dw_bias, ln_scale, ln_bias, pw1_kernel, pw1_bias, pw2_kernel, pw2_bias,
                   layer_scale=None, *, eps=1e-6, activation="gelu_exact", precision=None, implementation=None):
    """A ConvNeXt block, NHWC: ``x + layer_scale * pw2(act(pw1(LayerNorm(
    depthwise(x)))))``, in two kernels.

    The same as Flax's (and torchvision's) block: ``nn.Conv(C, (k, k),
    padding="SAME", feature_group_count=C)`` -> ``nn.LayerNorm(epsilon=eps)``
    -> ``nn.Dense(hidden)`` -> GELU -> ``nn.Dense(C)`` -> ``* layer_scale`` ->
    ``+ x``.

    Args:
      x: ``(..., N, H, W, C)``; extra leading axes are folded into the batch.
      dw_kernel: ``(k, k, 1, C)``, k in {3, 5, 7} (ConvNeXt: 7), "SAME"
        padding, stride 1. dw_bias: ``(C,)`` or None.
      ln_scale, ln_bias: ``(C,)``, the LayerNorm's scale and bias.
      pw1_kernel: ``(1, 1, C, hidden)`` (a Dense kernel ``(C, hidden)``
        reshaped); pw1_bias: ``(hidden,)`` or None.
      pw2_kernel: ``(1, 1, hidden, C)``; pw2_bias: ``(C,)`` or None.
      layer_scale: ``(C,)`` or None (no scale).
      eps: the LayerNorm's epsilon (ConvNeXt: 1e-6).
      activation: the hidden layer's ("gelu_exact" as in ConvNeXt;
        "gelu_tanh" is Flax's nn.gelu default), any jax_fcm activation.
      precision: as in lax, for the 1x1s (the fused kernel multiplies 16-bit
        types on tensor cores with fp32 accumulation).
      implementation: None: the depthwise kernel, then the fused kernel where
        it takes the block (kernel_refusal; on a GPU: Hopper, bfloat16/float16,
        C <= 192 and channel counts multiples of 8) and
        jax_fcm.planner.convnext_block_choice says it measured faster (light
        blocks, or a wave of 192-pixel blocks), else XLA's LayerNorm,
        jax_fcm.pw_pw's default for the MLP and XLA's residual. "kernel": the
        two kernels, an error where the fused one does not take the block.
        "xla": the same math as plain lax ops.

    The LayerNorm's output and the hidden activations are rounded to x's
    dtype as separate layers round them; the fused kernel adds the scaled
    result to x in fp32 and rounds once (XLA rounds the second 1x1's output,
    its product with layer_scale and the sum).

    Returns:
      ``(..., N, H, W, C)`` in x's dtype (every parameter must share it).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    dtype = _args.check_operands(
        {"x": x, "dw_kernel": dw_kernel, "ln_scale": ln_scale, "ln_bias": ln_bias, "pw1_kernel": pw1_kernel,
         "pw2_kernel": pw2_kernel},
        {"dw_bias": dw_bias, "pw1_bias": pw1_bias, "pw2_bias": pw2_bias, "layer_scale": layer_scale})
    *lead, h, w, c = x.shape
    if c == 0:
        raise ValueError(f"x must have at least one channel; got shape {x.shape}")
    k = _args.depthwise_kernel_size(dw_kernel, c)
    hidden = _args.pointwise_features(pw1_kernel, c, "pw1_kernel", "(1, 1, C, hidden)")
    cout = _args.pointwise_features(pw2_kernel, hidden, "pw2_kernel", "(1, 1, hidden, C)")
    if hidden == 0:
        raise ValueError("pw1_kernel must have at least one output channel (hidden >= 1)")
    if cout != c:
        raise ValueError(f"pw2_kernel must map back to the block's C={c} channels (the residual); got {cout}")
    for name, a, n in (("dw_bias", dw_bias, c), ("ln_scale", ln_scale, c), ("ln_bias", ln_bias, c),
                       ("pw1_bias", pw1_bias, hidden), ("pw2_bias", pw2_bias, c), ("layer_scale", layer_scale, c)):
        if a is not None:
            _args.check_shape(a, (n,), name, "(hidden,)" if name == "pw1_bias" else "(C,)")
    eps = float(eps)
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive finite number; got {eps}")
    st = _Static(activation=normalize_activation(activation, "activation"), eps=eps,
                 precision=_args.normalize_precision(precision))
    refusal = kernel_refusal(dtype, c, hidden)
    if implementation == "kernel" and refusal is not None:
        raise ValueError(refusal)
    fused = refusal is None and (implementation == "kernel" or planner.convnext_block_choice(
        x.shape, c, dtype, hidden=hidden)[0])
    zeros = functools.partial(jnp.zeros, dtype=dtype)
    b1 = zeros((hidden,)) if pw1_bias is None else pw1_bias
    b2 = zeros((c,)) if pw2_bias is None else pw2_bias
    scale = jnp.ones((c,), dtype) if layer_scale is None else layer_scale
    x4 = x.reshape((math.prod(lead), h, w, c))
    if implementation == "xla":
        pads = _args.normalize_padding("SAME", h, w, k, 1)
        mid = depthwise_conv(x4, dw_kernel, zeros((c,)) if dw_bias is None else dw_bias, stride=1, padding=pads,
                             activation="none", precision=st.precision)
        y = st.reference(mid, x4, ln_scale, ln_bias, pw1_kernel, b1, pw2_kernel, b2, scale)
    else:
        mid = depthwise(x4, dw_kernel, dw_bias, padding="SAME", precision=precision)
        if fused:
            _ffi.check_backend_supported()
            y = _mlp_kernel_call(st, mid, x4, ln_scale, ln_bias, pw1_kernel, b1, pw2_kernel, b2, scale)
        else:  # implementation None where the fused kernel does not take the block or measured slower
            mlp = _pw_pw(layer_norm(mid, ln_scale, ln_bias, eps=eps), pw1_kernel, pw2_kernel, b1, b2,
                         pw1_activation=st.activation, precision=precision)
            y = x4 + mlp * scale
    return y.reshape(x.shape)
