"""Linen layers whose parameter trees equal the stock unfused definitions, so
checkpoints move between them unchanged. In inference mode they run one fused
jax_fcm kernel (BatchNorm folded into its weights inside the jitted call); in
training mode they run the stock layers (batch statistics need the unfused
intermediate)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from flax_models.folding import (conv_bn_kernel, expansion_fused, folded_conv_bn, folded_dw_pw, folded_mbconv,
                                 folded_pw_dw, fuses_block, pair_path)
from jax_fcm.activations import activation_fn

Padding = Any  # "SAME", "VALID", or ((top, bottom), (left, right)), as nn.Conv takes


class SeparableConv(nn.Module):
    """Depthwise k×k conv → BatchNorm → act → pointwise 1×1 conv → BatchNorm → act.

    Submodules (the parameter tree): ``dw_conv`` (nn.Conv, feature_group_count=C,
    no bias), ``dw_bn`` (nn.BatchNorm), ``pw_conv`` (1×1 nn.Conv, no bias),
    ``pw_bn``. ``fused=False`` is exactly the stock Flax block; ``fused=True``
    runs ``jax_fcm.dw_pw`` whenever BatchNorm uses running averages;
    ``fused="auto"`` does so where jax_fcm.planner says fusing pays, and runs
    ``jax_fcm.depthwise`` + XLA's 1x1 convolution elsewhere.
    """

    features: int
    kernel_size: int = 3
    strides: int = 1
    padding: Padding = "SAME"
    dw_activation: str | None = "relu"
    pw_activation: str | None = "relu"
    use_running_average: bool | None = None
    momentum: float = 0.99
    epsilon: float = 1e-3
    fused: bool | str = True
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, use_running_average: bool | None = None):
        use_running_average = nn.merge_param("use_running_average", self.use_running_average, use_running_average)
        if use_running_average and not self.is_initializing():
            path = pair_path(self.fused, x, self.features, self.kernel_size, self.strides, self.dtype)
            if path != "stock":
                return self._folded(x, split=path == "split")
        return self._stock(x, use_running_average)

    def _bn(self, name, use_running_average):
        return nn.BatchNorm(use_running_average=use_running_average, momentum=self.momentum, epsilon=self.epsilon,
                            dtype=self.dtype, param_dtype=self.param_dtype, name=name)

    def _stock(self, x, use_running_average):
        k, c = self.kernel_size, x.shape[-1]
        conv = dict(use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype)
        y = nn.Conv(c, (k, k), strides=self.strides, padding=self.padding, feature_group_count=c, name="dw_conv",
                    **conv)(x)
        y = activation_fn(self.dw_activation)(self._bn("dw_bn", use_running_average)(y))
        y = nn.Conv(self.features, (1, 1), name="pw_conv", **conv)(y)
        return activation_fn(self.pw_activation)(self._bn("pw_bn", use_running_average)(y))

    def _folded(self, x, split: bool):
        params, stats = self.variables["params"], self.variables["batch_stats"]
        return folded_dw_pw(x, params["dw_conv"]["kernel"], (params["dw_bn"], stats["dw_bn"]),
                            params["pw_conv"]["kernel"], (params["pw_bn"], stats["pw_bn"]), epsilon=self.epsilon,
                            dtype=self.dtype, split=split, strides=self.strides, padding=self.padding,
                            dw_activation=self.dw_activation, pw_activation=self.pw_activation)


class ConvBN(nn.Module):
    """Plain k×k conv (no bias) → BatchNorm → act: the stems, expansions and
    heads. Submodules ``conv`` and ``bn``. In inference mode a ConvBN runs as
    one kernel (BatchNorm folded): ``jax_fcm.pointwise`` for a 1×1 stride-1
    conv, ``jax_fcm.conv2d`` for any other, with ``fused=True``, or with
    "auto" where jax_fcm.planner (use_pointwise_kernel, use_conv2d_kernel)
    says it measured faster than XLA's; ``fused=False`` (the default) is the
    stock layer."""

    features: int
    kernel_size: int = 1
    strides: int = 1
    padding: Padding = "SAME"
    activation: str | None = "relu"
    momentum: float = 0.99
    epsilon: float = 1e-3
    fused: bool | str = False
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, use_running_average: bool):
        k = self.kernel_size
        kind = (conv_bn_kernel(self.fused, x, self.features, k, self.strides, self.padding, self.dtype)
                if use_running_average and not self.is_initializing() else None)
        if kind:
            params, stats = self.variables["params"], self.variables["batch_stats"]
            return folded_conv_bn(kind, x, params["conv"]["kernel"], (params["bn"], stats["bn"]),
                                  epsilon=self.epsilon, dtype=self.dtype, strides=self.strides, padding=self.padding,
                                  activation=self.activation)
        y = nn.Conv(self.features, (k, k), strides=self.strides, padding=self.padding, use_bias=False,
                    dtype=self.dtype, param_dtype=self.param_dtype, name="conv")(x)
        y = nn.BatchNorm(use_running_average=use_running_average, momentum=self.momentum, epsilon=self.epsilon,
                         dtype=self.dtype, param_dtype=self.param_dtype, name="bn")(y)
        return activation_fn(self.activation)(y)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expansion (ConvBN, ReLU6) → SeparableConv (ReLU6,
    linear projection) → residual add when shapes allow. In inference mode
    the whole block runs as one ``jax_fcm.mbconv`` kernel (BatchNorms folded)
    with ``fused="block"`` (where it fits the GPU), or with "auto" where
    jax_fcm.planner.should_fuse_block says it pays; otherwise the expansion
    runs as ConvBN with fused="auto" (jax_fcm.pointwise where it measured
    faster; stock with ``fused=False``) and the DW→PW pair fuses as
    SeparableConv's ``fused`` says (True: the pair only)."""

    features: int
    expand_ratio: int
    strides: int = 1
    kernel_size: int = 3
    padding: Padding = "SAME"
    activation: str = "relu6"
    momentum: float = 0.99
    epsilon: float = 1e-3
    fused: bool | str = True  # as SeparableConv.fused, or "block" (the whole block in one kernel)
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, use_running_average: bool):
        residual = self.strides == 1 and x.shape[-1] == self.features
        if (use_running_average and self.expand_ratio != 1 and not self.is_initializing()
                and fuses_block(self.fused, x, x.shape[-1] * self.expand_ratio, self.features, self.kernel_size,
                                self.strides, self.dtype, self.activation)):
            params, stats = self.variables["params"], self.variables["batch_stats"]
            expand, dw_pw = params["expand"], params["dw_pw"]
            return folded_mbconv(
                x, expand["conv"]["kernel"], (expand["bn"], stats["expand"]["bn"]), dw_pw["dw_conv"]["kernel"],
                (dw_pw["dw_bn"], stats["dw_pw"]["dw_bn"]), dw_pw["pw_conv"]["kernel"],
                (dw_pw["pw_bn"], stats["dw_pw"]["pw_bn"]), epsilon=self.epsilon, dtype=self.dtype,
                strides=self.strides, padding=self.padding, activation=self.activation, residual=residual)
        common = dict(momentum=self.momentum, epsilon=self.epsilon, dtype=self.dtype, param_dtype=self.param_dtype)
        y = x
        if self.expand_ratio != 1:
            y = ConvBN(x.shape[-1] * self.expand_ratio, 1, activation=self.activation,
                       fused=expansion_fused(self.fused), name="expand", **common)(y, use_running_average)
        y = SeparableConv(self.features, self.kernel_size, self.strides, self.padding, dw_activation=self.activation,
                          pw_activation=None, fused=self.fused, name="dw_pw", **common)(y, use_running_average)
        if residual:
            y = y + x.astype(y.dtype)
        return y


class ExpandDepthwise(nn.Module):
    """1×1 expansion conv → BatchNorm → act → depthwise k×k conv → BatchNorm →
    act: the first half of an inverted residual whose projection cannot join
    it (a squeeze-excite in between: EfficientNet, MobileNetV3).

    Submodules (the parameter tree): ``expand_conv`` (1×1 nn.Conv to
    ``features`` channels, no bias) and ``expand_bn`` — absent with
    ``expand=False`` (expansion factor 1: ``features`` must be the input's
    channels) — then ``dw_conv`` (nn.Conv, feature_group_count=features, no
    bias) and ``dw_bn``. In inference mode, BatchNorms folded:
    ``fused=True`` runs one ``jax_fcm.pw_dw`` kernel (where its input window
    fits a block's shared memory; the split path otherwise), ``"auto"`` what
    jax_fcm.planner.pw_dw_choice picks (that kernel, or XLA's 1×1 conv then
    ``jax_fcm.depthwise``); without an expansion both run
    ``jax_fcm.depthwise``. ``fused=False`` is the stock layers.
    """

    features: int
    kernel_size: int = 3
    strides: int = 1
    padding: Padding = "SAME"
    activation: str | None = "silu"
    expand: bool = True
    momentum: float = 0.99
    epsilon: float = 1e-3
    fused: bool | str = "auto"
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, use_running_average: bool):
        if self.fused not in (True, False, "auto"):
            raise ValueError(f"fused must be True, False or 'auto'; got {self.fused!r}")
        if not self.expand and x.shape[-1] != self.features:
            raise ValueError(f"expand=False needs features == the input's channels; got {self.features} and "
                             f"{x.shape[-1]}")
        if use_running_average and self.fused is not False and not self.is_initializing():
            params, stats = self.variables["params"], self.variables["batch_stats"]
            expand_kernel, expand_bn = None, None
            if self.expand:
                expand_kernel = params["expand_conv"]["kernel"]
                expand_bn = (params["expand_bn"], stats["expand_bn"])
            return folded_pw_dw(x, expand_kernel, expand_bn, params["dw_conv"]["kernel"],
                                (params["dw_bn"], stats["dw_bn"]), epsilon=self.epsilon, dtype=self.dtype,
                                implementation="fused" if self.fused is True else None, strides=self.strides,
                                padding=self.padding, activation=self.activation)
        conv = dict(use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype)
        bn = dict(use_running_average=use_running_average, momentum=self.momentum, epsilon=self.epsilon,
                  dtype=self.dtype, param_dtype=self.param_dtype)
        act = activation_fn(self.activation)
        y = x
        if self.expand:
            y = act(nn.BatchNorm(name="expand_bn", **bn)(nn.Conv(self.features, (1, 1), name="expand_conv", **conv)(y)))
        k = self.kernel_size
        y = nn.Conv(self.features, (k, k), strides=self.strides, padding=self.padding,
                    feature_group_count=self.features, name="dw_conv", **conv)(y)
        return act(nn.BatchNorm(name="dw_bn", **bn)(y))
