"""The fused ops written as plain `lax` convolutions: the test oracle, the
`implementation="xla"` path and the backward pass of the custom VJPs."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jax_fcm.activations import apply_activation

_NHWC = ("NHWC", "HWIO", "NHWC")


def depthwise_conv(x, kernel, bias, *, stride: int, padding, activation: str, precision):
    y = lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(stride, stride),
        padding=padding,
        dimension_numbers=_NHWC,
        feature_group_count=x.shape[-1],
        precision=precision,
    )
    return apply_activation(activation, y + bias)


def pointwise_conv(x, kernel, bias, *, activation: str, precision):
    y = lax.conv_general_dilated(
        x, kernel, window_strides=(1, 1), padding="VALID", dimension_numbers=_NHWC, precision=precision
    )
    return apply_activation(activation, y + bias)


def dense_conv(x, kernel, bias, *, strides: tuple[int, int], padding, activation: str, precision):
    y = lax.conv_general_dilated(x, kernel, window_strides=strides, padding=padding, dimension_numbers=_NHWC,
                                 precision=precision)
    return apply_activation(activation, y + bias)


def dw_pw_reference(x, dw_kernel, dw_bias, pw_kernel, pw_bias, *, stride, padding, dw_activation, pw_activation,
                    precision):
    """x: (N, H, W, C); padding: ((top, bottom), (left, right)); activations by canonical name."""
    mid = depthwise_conv(x, dw_kernel, dw_bias, stride=stride, padding=padding, activation=dw_activation,
                         precision=precision)
    return pointwise_conv(mid, pw_kernel, pw_bias, activation=pw_activation, precision=precision)


def mbconv_reference(x, expand_kernel, expand_bias, dw_kernel, dw_bias, project_kernel, project_bias, *, stride,
                     padding, activation, residual, precision):
    """Inverted residual: 1x1 expand (skipped when expand_kernel is None) ->
    activation -> depthwise -> activation -> linear 1x1 project (+ x)."""
    mid = x
    if expand_kernel is not None:
        mid = pointwise_conv(x, expand_kernel, expand_bias, activation=activation, precision=precision)
    y = dw_pw_reference(mid, dw_kernel, dw_bias, project_kernel, project_bias, stride=stride, padding=padding,
                        dw_activation=activation, pw_activation="none", precision=precision)
    return y + x if residual else y


def pw_dw_reference(x, pw_kernel, pw_bias, dw_kernel, dw_bias, *, stride, padding, pw_activation, dw_activation,
                    precision):
    """1x1 conv + bias -> activation, then depthwise + bias -> activation."""
    mid = pointwise_conv(x, pw_kernel, pw_bias, activation=pw_activation, precision=precision)
    return depthwise_conv(mid, dw_kernel, dw_bias, stride=stride, padding=padding, activation=dw_activation,
                          precision=precision)


def pw_pw_reference(x, pw1_kernel, pw1_bias, pw2_kernel, pw2_bias, *, pw1_activation, pw2_activation, precision):
    """Two 1x1 convolutions, each + bias -> activation."""
    mid = pointwise_conv(x, pw1_kernel, pw1_bias, activation=pw1_activation, precision=precision)
    return pointwise_conv(mid, pw2_kernel, pw2_bias, activation=pw2_activation, precision=precision)


def layer_norm(x, scale, bias, *, eps: float):
    """LayerNorm over the channel (last) axis, statistics and affine in
    float32 as flax.linen.LayerNorm computes them, the result in x's dtype."""
    xf = x.astype(jnp.float32)
    mean = xf.mean(axis=-1, keepdims=True)
    var = jnp.square(xf - mean).mean(axis=-1, keepdims=True)
    y = (xf - mean) * lax.rsqrt(var + eps) * scale.astype(jnp.float32) + bias.astype(jnp.float32)
    return y.astype(x.dtype)


def convnext_mlp_reference(x, residual, ln_scale, ln_bias, pw1_kernel, pw1_bias, pw2_kernel, pw2_bias, layer_scale, *,
                           activation, eps, precision):
    """What follows a ConvNeXt block's depthwise conv: LayerNorm -> 1x1 ->
    activation -> 1x1 -> layer scale -> + residual (the block's input)."""
    y = pw_pw_reference(layer_norm(x, ln_scale, ln_bias, eps=eps), pw1_kernel, pw1_bias, pw2_kernel, pw2_bias,
                        pw1_activation=activation, pw2_activation="none", precision=precision)
    return residual + y * layer_scale
