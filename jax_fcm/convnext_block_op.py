"""`jax_fcm.convnext_block`: a whole ConvNeXt block (Liu et al. 2022),
depthwise k x k conv -> LayerNorm over the channels -> 1x1 to the hidden
width -> GELU -> 1x1 back to C -> layer scale -> + the block's input, NHWC.

Run as XLA runs it, the block is five passes over the activations after the
depthwise conv (LayerNorm, each 1x1 - the hidden tensor 4x as wide - and the
layer-scaled residual). Here it is two kernels: jax_fcm.depthwise, then
jax_fcm.layer_norm_mlp's (one Hopper warpgroup-MMA kernel that
layer-normalizes each tile of pixels in shared memory, keeps the hidden
activations on chip, and adds the layer-scaled result to the block's input in
its epilogue)."""

from __future__ import annotations

import math

import jax.numpy as jnp

from jax_fcm import _args, layer_norm_mlp_op
from jax_fcm.depthwise_op import depthwise
from jax_fcm.reference import depthwise_conv

IMPLEMENTATIONS = layer_norm_mlp_op.IMPLEMENTATIONS
kernel_refusal = layer_norm_mlp_op.kernel_refusal  # the fused kernel's limits, as for layer_norm_mlp


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
        jax_fcm.planner.layer_norm_mlp_choice says it measured faster (light
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
    if dw_bias is not None:
        _args.check_shape(dw_bias, (c,), "dw_bias", "(C,)")
    hidden = layer_norm_mlp_op.check_operands(c, ln_scale, ln_bias, pw1_kernel, pw1_bias, pw2_kernel, pw2_bias,
                                              layer_scale)
    st = layer_norm_mlp_op.make_static(eps, activation, precision)
    path = layer_norm_mlp_op.resolve_implementation(implementation, dtype, x.shape, hidden)
    x4 = x.reshape((math.prod(lead), h, w, c))
    if path == "xla":
        pads = _args.normalize_padding("SAME", h, w, k, 1)
        mid = depthwise_conv(x4, dw_kernel, jnp.zeros((c,), dtype) if dw_bias is None else dw_bias, stride=1,
                             padding=pads, activation="none", precision=st.precision)
    else:
        mid = depthwise(x4, dw_kernel, dw_bias, padding="SAME", precision=precision)
    y = layer_norm_mlp_op.run(st, mid, x4, ln_scale, ln_bias, pw1_kernel, pw1_bias, pw2_kernel, pw2_bias, layer_scale,
                              path)
    return y.reshape(x.shape)
