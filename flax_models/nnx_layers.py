"""NNX versions of the fused layers (flax_models.nnx): the same submodules and
state as the stock NNX definitions (nnx.Conv + nnx.BatchNorm), one fused
jax_fcm kernel in eval mode (``model.eval()``: BatchNorm on running averages,
folded into the kernel's weights), the stock layers in train mode."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import nnx

import jax_fcm
from flax_models.folding import (conv_bn_kernel, expansion_fused, folded_conv_bn, folded_dw_pw, folded_mbconv,
                                 folded_pw_dw, fuses_block, pair_path)
from jax_fcm.activations import activation_fn


def _bn_params(bn: nnx.BatchNorm) -> tuple[dict, dict]:
    params = {name: getattr(bn, name)[...] for name in ("scale", "bias") if getattr(bn, name, None) is not None}
    return params, {"mean": bn.mean[...], "var": bn.var[...]}


class SeparableConv(nnx.Module):
    """Depthwise k×k conv → BatchNorm → act → pointwise 1×1 conv → BatchNorm → act
    (attributes ``dw_conv``, ``dw_bn``, ``pw_conv``, ``pw_bn``); ``fused=False``
    is exactly the stock NNX block, ``fused=True`` runs ``jax_fcm.dw_pw`` in
    inference mode, ``fused="auto"`` does so where jax_fcm.planner says
    fusing pays and runs ``jax_fcm.depthwise`` + XLA's 1x1 convolution elsewhere."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, strides: int = 1,
                 padding: Any = "SAME", *, dw_activation: str | None = "relu", pw_activation: str | None = "relu",
                 momentum: float = 0.99, epsilon: float = 1e-3, fused: bool | str = True, dtype: Any = None,
                 param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        conv = dict(use_bias=False, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        bn = dict(momentum=momentum, epsilon=epsilon, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.dw_conv = nnx.Conv(in_features, in_features, (kernel_size, kernel_size), strides, padding=padding,
                                feature_group_count=in_features, **conv)
        self.dw_bn = nnx.BatchNorm(in_features, **bn)
        self.pw_conv = nnx.Conv(in_features, out_features, (1, 1), **conv)
        self.pw_bn = nnx.BatchNorm(out_features, **bn)
        self.strides, self.padding, self.epsilon, self.dtype = strides, padding, epsilon, dtype
        self.dw_activation, self.pw_activation, self.fused = dw_activation, pw_activation, fused
        self.out_features, self.kernel_size = out_features, kernel_size

    def __call__(self, x):
        if self.dw_bn.use_running_average and self.pw_bn.use_running_average:
            path = pair_path(self.fused, x, self.out_features, self.kernel_size, self.strides, self.dtype)
            if path != "stock":
                return self._folded(x, split=path == "split")
        y = activation_fn(self.dw_activation)(self.dw_bn(self.dw_conv(x)))
        return activation_fn(self.pw_activation)(self.pw_bn(self.pw_conv(y)))

    def _folded(self, x, split: bool):
        return folded_dw_pw(x, self.dw_conv.kernel[...], _bn_params(self.dw_bn), self.pw_conv.kernel[...],
                            _bn_params(self.pw_bn), epsilon=self.epsilon, dtype=self.dtype, split=split,
                            strides=self.strides,
                            padding=self.padding, dw_activation=self.dw_activation, pw_activation=self.pw_activation)


class ConvBN(nnx.Module):
    """k×k conv (no bias) → BatchNorm → act (attributes ``conv``, ``bn``): the
    stems, expansions and heads. In eval mode a ConvBN runs as one kernel
    (BatchNorm folded): ``jax_fcm.pointwise`` for a 1×1 stride-1 conv,
    ``jax_fcm.conv2d`` for any other, with ``fused=True``, or "auto" where
    jax_fcm.planner (use_pointwise_kernel, use_conv2d_kernel) picks it; False
    (the default) is the stock layer."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 1, strides: int = 1,
                 padding: Any = "SAME", *, activation: str | None = "relu", momentum: float = 0.99,
                 epsilon: float = 1e-3, fused: bool | str = False, dtype: Any = None, param_dtype: Any = jnp.float32,
                 rngs: nnx.Rngs):
        self.conv = nnx.Conv(in_features, out_features, (kernel_size, kernel_size), strides, padding=padding,
                             use_bias=False, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.bn = nnx.BatchNorm(out_features, momentum=momentum, epsilon=epsilon, dtype=dtype,
                                param_dtype=param_dtype, rngs=rngs)
        self.activation, self.kernel_size, self.strides, self.padding = activation, kernel_size, strides, padding
        self.epsilon, self.fused, self.dtype = epsilon, fused, dtype

    def __call__(self, x):
        kind = (conv_bn_kernel(self.fused, x, self.conv.out_features, self.kernel_size, self.strides, self.padding,
                               self.dtype) if self.bn.use_running_average else None)
        if kind:
            return folded_conv_bn(kind, x, self.conv.kernel[...], _bn_params(self.bn), epsilon=self.epsilon,
                                  dtype=self.dtype, strides=self.strides, padding=self.padding,
                                  activation=self.activation)
        return activation_fn(self.activation)(self.bn(self.conv(x)))


class InvertedResidual(nnx.Module):
    """MobileNetV2 block: 1×1 expansion (``expand``, a ConvBN; absent when
    expand_ratio is 1) → ``dw_pw`` (a SeparableConv with a linear projection,
    fused as its ``fused`` says) → residual add when shapes allow. In eval
    mode the whole block with an expansion runs as one ``jax_fcm.mbconv``
    kernel where ``fused`` says ("block", or "auto": jax_fcm.planner.should_fuse_block;
    True fuses the pair only)."""

    def __init__(self, in_features: int, out_features: int, expand_ratio: int, strides: int = 1,
                 kernel_size: int = 3, padding: Any = "SAME", *, activation: str = "relu6", momentum: float = 0.99,
                 epsilon: float = 1e-3, fused: bool | str = True, dtype: Any = None, param_dtype: Any = jnp.float32,
                 rngs: nnx.Rngs):
        common = dict(momentum=momentum, epsilon=epsilon, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        hidden = in_features * expand_ratio
        self.expand = (ConvBN(in_features, hidden, 1, activation=activation, fused=expansion_fused(fused), **common)
                       if expand_ratio != 1 else None)
        self.dw_pw = SeparableConv(hidden, out_features, kernel_size, strides, padding, dw_activation=activation,
                                   pw_activation=None, fused=fused, **common)
        self.residual = strides == 1 and in_features == out_features
        self.out_features, self.kernel_size, self.strides, self.padding = out_features, kernel_size, strides, padding
        self.activation, self.epsilon, self.dtype, self.fused = activation, epsilon, dtype, fused

    def __call__(self, x):
        e, s = self.expand, self.dw_pw
        if (e is not None and e.bn.use_running_average and s.dw_bn.use_running_average and s.pw_bn.use_running_average
                and fuses_block(self.fused, x, e.conv.out_features, self.out_features, self.kernel_size, self.strides,
                                self.dtype, self.activation)):
            return folded_mbconv(x, e.conv.kernel[...], _bn_params(e.bn), s.dw_conv.kernel[...], _bn_params(s.dw_bn),
                                 s.pw_conv.kernel[...], _bn_params(s.pw_bn), epsilon=self.epsilon, dtype=self.dtype,
                                 strides=self.strides, padding=self.padding, activation=self.activation,
                                 residual=self.residual)
        y = self.expand(x) if self.expand is not None else x
        y = self.dw_pw(y)
        return y + x.astype(y.dtype) if self.residual else y


class ExpandDepthwise(nnx.Module):
    """1×1 expansion conv → BatchNorm → act → depthwise k×k conv → BatchNorm →
    act (attributes ``expand_conv``, ``expand_bn`` — None with
    ``expand=False`` — ``dw_conv``, ``dw_bn``), as flax_models.ExpandDepthwise:
    in eval mode one ``jax_fcm.pw_dw`` kernel with ``fused=True`` (the split
    path where its window outgrows shared memory), the planner's path with
    "auto", the stock layers with False."""

    def __init__(self, in_features: int, features: int, kernel_size: int = 3, strides: int = 1,
                 padding: Any = "SAME", *, activation: str | None = "silu", expand: bool = True,
                 momentum: float = 0.99, epsilon: float = 1e-3, fused: bool | str = "auto", dtype: Any = None,
                 param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        if fused not in (True, False, "auto"):
            raise ValueError(f"fused must be True, False or 'auto'; got {fused!r}")
        if not expand and in_features != features:
            raise ValueError(f"expand=False needs features == in_features; got {features} and {in_features}")
        conv = dict(use_bias=False, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        bn = dict(momentum=momentum, epsilon=epsilon, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.expand_conv = nnx.Conv(in_features, features, (1, 1), **conv) if expand else None
        self.expand_bn = nnx.BatchNorm(features, **bn) if expand else None
        self.dw_conv = nnx.Conv(features, features, (kernel_size, kernel_size), strides, padding=padding,
                                feature_group_count=features, **conv)
        self.dw_bn = nnx.BatchNorm(features, **bn)
        self.strides, self.padding, self.activation, self.epsilon = strides, padding, activation, epsilon
        self.fused, self.dtype = fused, dtype

    def __call__(self, x):
        act = activation_fn(self.activation)
        if self.dw_bn.use_running_average and self.fused is not False:
            expand_kernel = None if self.expand_conv is None else self.expand_conv.kernel[...]
            expand_bn = None if self.expand_bn is None else _bn_params(self.expand_bn)
            return folded_pw_dw(x, expand_kernel, expand_bn, self.dw_conv.kernel[...], _bn_params(self.dw_bn),
                                epsilon=self.epsilon, dtype=self.dtype,
                                implementation="fused" if self.fused is True else None, strides=self.strides,
                                padding=self.padding, activation=self.activation)
        y = x if self.expand_conv is None else act(self.expand_bn(self.expand_conv(x)))
        return act(self.dw_bn(self.dw_conv(y)))


class DepthwiseConv(nnx.Module):
    """``nnx.Conv(C, C, (k, k), feature_group_count=C)`` with the same state
    (``kernel`` (k, k, 1, C), ``bias`` (C,)), initializers and random-key use,
    run as one ``jax_fcm.depthwise`` call (bias and ``activation`` fused; in
    training too); ``use_kernel=False`` runs the lax form."""

    def __init__(self, in_features: int, kernel_size: int = 7, strides: int = 1, padding: Any = "SAME", *,
                 use_bias: bool = True, activation: str | None = None, use_kernel: bool = True, dtype: Any = None,
                 param_dtype: Any = jnp.float32, kernel_init: Any = nnx.initializers.lecun_normal(),
                 bias_init: Any = nnx.initializers.zeros_init(), rngs: nnx.Rngs):
        k = kernel_size
        self.kernel = nnx.Param(kernel_init(rngs.params(), (k, k, 1, in_features), param_dtype))
        self.bias = nnx.Param(bias_init(rngs.params(), (in_features,), param_dtype)) if use_bias else nnx.data(None)
        self.strides, self.padding, self.activation, self.use_kernel = strides, padding, activation, use_kernel
        self.dtype = dtype

    def __call__(self, x):
        bias = None if self.bias is None else self.bias[...]
        x, kernel, bias = nnx.nn.dtypes.promote_dtype((x, self.kernel[...], bias), dtype=self.dtype)
        return jax_fcm.depthwise(x, kernel, bias, strides=self.strides, padding=self.padding,
                                 activation=self.activation, implementation=None if self.use_kernel else "xla")
