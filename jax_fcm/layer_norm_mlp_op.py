"""`jax_fcm.layer_norm_mlp`: a pre-norm MLP with its residual, NHWC -
shortcut + layer_scale * pw2(act(pw1(LayerNorm(x)))) - in one kernel: the
tail of a ConvNeXt block after its depthwise conv (jax_fcm.convnext_block)
and the MLP half of a pre-norm transformer layer over NHWC tokens
(MobileViT's). XLA runs it as four passes over the activations (LayerNorm,
each 1x1 - the hidden tensor often 2-4x as wide - and the residual); here one
Hopper warpgroup-MMA kernel (the pw_pw kernel with the block's ends)
layer-normalizes each tile of pixels in shared memory, keeps the hidden
activations on chip and adds the layer-scaled result to the shortcut in its
epilogue."""

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
from jax_fcm.gpu import GpuSpec, detect
from jax_fcm.pw_pw_op import MAX_CIN
from jax_fcm.pw_pw_op import pw_pw as _pw_pw
from jax_fcm.reference import convnext_mlp_reference, layer_norm

IMPLEMENTATIONS = (None, "kernel", "xla")


@dataclasses.dataclass(frozen=True)
class Static:
    """Everything about a call that is not an array (hashable for custom_vjp)."""

    activation: str
    eps: float
    precision: lax.Precision

    def reference(self, x, shortcut, ln_scale, ln_bias, w1, b1, w2, b2, layer_scale):
        return convnext_mlp_reference(x, shortcut, ln_scale, ln_bias, w1, b1, w2, b2, layer_scale,
                                      activation=self.activation, eps=self.eps, precision=self.precision)


def make_static(eps, activation, precision) -> Static:
    eps = float(eps)
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive finite number; got {eps}")
    return Static(activation=normalize_activation(activation, "activation"), eps=eps,
                  precision=_args.normalize_precision(precision))


def _ffi_call(st: Static, x, shortcut, ln_scale, ln_bias, w1, b1, w2, b2, layer_scale):
    call = jax.ffi.ffi_call(_ffi.CONVNEXT_MLP_TARGET, jax.ShapeDtypeStruct(x.shape, x.dtype))
    return call(x, shortcut, ln_scale, ln_bias, w1, b1, w2, b2, layer_scale,
                pw1_activation=np.int64(activation_code(st.activation)), eps=np.float32(st.eps))


@functools.lru_cache(maxsize=None)
def _batched_ffi_call(st: Static):
    # Two activations (x and the shortcut), seven weights.
    return _batching.batch_parallel(functools.partial(_ffi_call, st), weight_ranks=(1, 1, 4, 1, 4, 1, 1),
                                    activations=2)


# XLA's backward of the reference (LayerNorm, both 1x1s, the residual)
# recomputes what the kernel kept on chip.
_fused = _kernel_call.with_reference_backward(_batched_ffi_call)


def kernel_refusal(dtype, c: int, hidden: int, gpu: GpuSpec | None = None) -> str | None:
    """Why the fused LayerNorm + MLP + residual kernel does not take C
    channels and a hidden width, or None when it does: on the default backend
    (gpu None) or, for planning, on a described GPU. The CPU handler takes
    every call; on a GPU it is the Hopper warpgroup-MMA kernel:
    bfloat16/float16, C and hidden multiples of 8, C <= 192 (a tile's pixel
    rows stay in shared memory), a compute capability 9.x device and (when
    running) an sm_90a build."""
    if max(c * hidden, 128 * c) > _args.INT32_MAX:
        return "the layer_norm_mlp kernel needs C*hidden and 128*C below 2**31 (32-bit offsets)"
    running = gpu is None
    if running and jax.default_backend() != "gpu":
        return None
    dtype = jnp.dtype(dtype)
    if dtype == jnp.float32:
        return "the layer_norm_mlp kernel runs on Hopper's wgmma, which takes bfloat16 or float16, not float32"
    if c % 8 or hidden % 8:
        return f"the layer_norm_mlp kernel needs C and hidden multiples of 8; got C={c}, hidden={hidden}"
    if c > MAX_CIN[dtype]:
        return f"the layer_norm_mlp kernel takes C <= {MAX_CIN[dtype]} (a tile's rows in shared memory); got C={c}"
    gpu = gpu or detect()
    if not gpu.wgmma or (running and not _ffi.native().built_with_wgmma):
        return "the layer_norm_mlp kernel needs a Hopper GPU (compute capability 9.x) and an sm_90a build of jax_fcm"
    return None


def check_operands(c: int, ln_scale, ln_bias, pw1_kernel, pw1_bias, pw2_kernel, pw2_bias, layer_scale) -> int:
    """The LayerNorm's, the MLP's and the layer scale's shapes for C
    channels (their dtypes are the caller's check); returns the hidden width."""
    hidden = _args.pointwise_features(pw1_kernel, c, "pw1_kernel", "(1, 1, C, hidden)")
    cout = _args.pointwise_features(pw2_kernel, hidden, "pw2_kernel", "(1, 1, hidden, C)")
    if hidden == 0:
        raise ValueError("pw1_kernel must have at least one output channel (hidden >= 1)")
    if cout != c:
        raise ValueError(f"pw2_kernel must map back to the input's C={c} channels (the residual); got {cout}")
    for name, a, n in (("ln_scale", ln_scale, c), ("ln_bias", ln_bias, c), ("pw1_bias", pw1_bias, hidden),
                       ("pw2_bias", pw2_bias, c), ("layer_scale", layer_scale, c)):
        if a is not None:
            _args.check_shape(a, (n,), name, "(hidden,)" if name == "pw1_bias" else "(C,)")
    return hidden


def resolve_implementation(implementation, dtype, x_shape, hidden: int) -> str:
    """What a call runs (_args.resolve_implementation's rule): "xla" (the
    reference) where asked, "kernel" (the fused kernel) where asked or, for
    None, where it takes the call and planner.layer_norm_mlp_choice picks it,
    else "split": XLA's LayerNorm and residual around jax_fcm.pw_pw's default.
    "kernel" where the fused kernel does not take the call raises its refusal."""
    c = x_shape[-1]
    chosen = _args.resolve_implementation(
        implementation, kernel_refusal(dtype, c, hidden),
        lambda: planner.layer_norm_mlp_choice(x_shape, c, dtype, hidden=hidden)[0])
    return "split" if implementation is None and chosen == "xla" else chosen


def run(st: Static, x4, shortcut4, ln_scale, ln_bias, pw1_kernel, pw1_bias, pw2_kernel, pw2_bias, layer_scale,
        path: str):
    """The checked op on rank-4 x and shortcut along `path`
    (resolve_implementation's "xla", "kernel" or "split")."""
    dtype, c = x4.dtype, x4.shape[-1]
    hidden = pw1_kernel.shape[-1]
    b1 = jnp.zeros((hidden,), dtype) if pw1_bias is None else pw1_bias
    b2 = jnp.zeros((c,), dtype) if pw2_bias is None else pw2_bias
    scale = jnp.ones((c,), dtype) if layer_scale is None else layer_scale
    if path == "xla":
        return st.reference(x4, shortcut4, ln_scale, ln_bias, pw1_kernel, b1, pw2_kernel, b2, scale)
    if path == "kernel":
        _ffi.check_backend_supported()
        return _fused(st, x4, shortcut4, ln_scale, ln_bias, pw1_kernel, b1, pw2_kernel, b2, scale)
    mlp = _pw_pw(layer_norm(x4, ln_scale, ln_bias, eps=st.eps), pw1_kernel, pw2_kernel, b1, b2,
                 pw1_activation=st.activation, precision=st.precision)
    return shortcut4 + mlp * scale


def layer_norm_mlp(x, ln_scale, ln_bias, pw1_kernel, pw1_bias, pw2_kernel, pw2_bias, layer_scale=None, *,
                   shortcut=None, eps=1e-6, activation="gelu_exact", precision=None, implementation=None):
    """``shortcut + layer_scale * pw2(act(pw1(LayerNorm(x))))`` over NHWC
    pixels, in one kernel.

    The same as ``nn.LayerNorm(epsilon=eps)`` -> ``nn.Dense(hidden)`` ->
    activation -> ``nn.Dense(C)`` -> ``* layer_scale`` -> ``+ shortcut`` on the
    channel axis: a pre-norm transformer layer's MLP half (shortcut None: x
    itself), or a ConvNeXt block after its depthwise conv (shortcut: the
    block's input; jax_fcm.convnext_block).

    Args:
      x: ``(..., N, H, W, C)``; extra leading axes are folded into the batch.
      ln_scale, ln_bias: ``(C,)``, the LayerNorm's scale and bias.
      pw1_kernel: ``(1, 1, C, hidden)`` (a Dense kernel ``(C, hidden)``
        reshaped); pw1_bias: ``(hidden,)`` or None.
      pw2_kernel: ``(1, 1, hidden, C)``; pw2_bias: ``(C,)`` or None.
      layer_scale: ``(C,)`` or None (no scale).
      shortcut: x's shape, or None for x.
      eps: the LayerNorm's epsilon.
      activation: the hidden layer's ("gelu_exact" by default; "gelu_tanh" is
        Flax's nn.gelu default), any jax_fcm activation.
      precision: as in lax, for the 1x1s (the fused kernel multiplies 16-bit
        types on tensor cores with fp32 accumulation).
      implementation: None: the fused kernel where it takes the call
        (kernel_refusal; on a GPU: Hopper, bfloat16/float16, C <= 192, C and
        hidden multiples of 8) and jax_fcm.planner.layer_norm_mlp_choice says
        it measured faster, else XLA's LayerNorm, jax_fcm.pw_pw's default for
        the MLP and XLA's residual. "kernel": the fused kernel, an error where
        it does not take the call. "xla": the same math as plain lax ops.

    The LayerNorm's output and the hidden activations are rounded to x's
    dtype as separate layers round them; the fused kernel adds the scaled
    result to the shortcut in fp32 and rounds once.

    Returns:
      ``(..., N, H, W, C)`` in x's dtype (every operand must share it).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    dtype = _args.check_operands(
        {"x": x, "ln_scale": ln_scale, "ln_bias": ln_bias, "pw1_kernel": pw1_kernel, "pw2_kernel": pw2_kernel},
        {"pw1_bias": pw1_bias, "pw2_bias": pw2_bias, "layer_scale": layer_scale, "shortcut": shortcut})
    *lead, h, w, c = x.shape
    if c == 0:
        raise ValueError(f"x must have at least one channel; got shape {x.shape}")
    hidden = check_operands(c, ln_scale, ln_bias, pw1_kernel, pw1_bias, pw2_kernel, pw2_bias, layer_scale)
    if shortcut is not None:
        _args.check_shape(shortcut, x.shape, "shortcut", "x's shape")
    st = make_static(eps, activation, precision)
    path = resolve_implementation(implementation, dtype, x.shape, hidden)
    x4 = x.reshape((math.prod(lead), h, w, c))
    shortcut4 = x4 if shortcut is None else shortcut.reshape(x4.shape)
    y = run(st, x4, shortcut4, ln_scale, ln_bias, pw1_kernel, pw1_bias, pw2_kernel, pw2_bias, layer_scale, path)
    return y.reshape(x.shape)
