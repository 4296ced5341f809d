"""NNX ConvNeXt (flax_models.nnx): the block and model of flax_models.convnext
with the stock NNX state (an ``nnx.Conv``-shaped depthwise conv, ``nnx.LayerNorm``,
two ``nnx.Linear``, the layer scale ``gamma``), so one state loads into either.
``fusion`` as in the Linen model: "auto" runs a whole block as one
``jax_fcm.convnext_block`` where the planner picks it, else the 7x7 depthwise
conv as ``jax_fcm.depthwise`` and each MLP as one ``jax_fcm.pw_pw`` kernel where the
planner picks it (flax_models.convnext.mlp_as_pw_pw), else its expansion as
``jax_fcm.pointwise`` where that measured faster; "always" the kernels wherever
they take the layer; "never" the stock layers. No BatchNorm: train and eval
mode run the same kernels (each op has its own backward)."""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

import jax_fcm
from flax_models.convnext import (CONVNEXT_FUSION, block_as_convnext_block, conv_runs_conv2d, dense_runs_pointwise,
                                  mlp_as_pw_pw)
from flax_models.nnx_layers import DepthwiseConv
from jax_fcm import planner
from jax_fcm.model_layers import CONVNEXT_VARIANTS


class ConvNeXtBlock(nnx.Module):
    """7x7 depthwise conv (``dwconv``) -> LayerNorm (``norm``) -> Linear to 4C
    (``pwconv1``) -> GELU -> Linear to C (``pwconv2``) -> layer scale
    (``gamma``) -> + x. ``use_kernel``: the depthwise conv as jax_fcm.depthwise
    (else ``nnx.Conv``); ``pointwise``: "auto", True or False for the MLP, as
    in flax_models.convnext.ConvNeXtBlock."""

    def __init__(self, features: int, *, use_kernel: bool = True, pointwise: bool | str = "auto",
                 layer_scale_init: float = 1e-6, dtype: Any = None, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        common = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        if use_kernel:
            self.dwconv = DepthwiseConv(features, 7, padding=3, **common)
        else:  # the stock layer itself
            self.dwconv = nnx.Conv(features, features, (7, 7), padding=3, feature_group_count=features, **common)
        self.norm = nnx.LayerNorm(features, epsilon=1e-6, **common)
        self.pwconv1 = nnx.Linear(features, 4 * features, **common)
        self.pwconv2 = nnx.Linear(4 * features, features, **common)
        self.gamma = nnx.Param(jnp.full((features,), layer_scale_init, param_dtype))
        self.pointwise, self.dtype, self.param_dtype = pointwise, dtype, param_dtype

    def __call__(self, x):
        c = x.shape[-1]
        dtype = self.dtype if self.dtype is not None else jnp.promote_types(x.dtype, self.param_dtype)
        if block_as_convnext_block(x.shape, c, dtype, isinstance(self.dwconv, DepthwiseConv), self.pointwise):
            return self._as_one_call(x, c)
        y = self.norm(self.dwconv(x))
        if mlp_as_pw_pw(y.shape, c, dtype, self.pointwise):  # the two Linear layers' parameters, one kernel
            args = (y, self.pwconv1.kernel[...], self.pwconv1.bias[...], self.pwconv2.kernel[...],
                    self.pwconv2.bias[...])
            y, k1, b1, k2, b2 = nnx.nn.dtypes.promote_dtype(args, dtype=self.dtype)
            y = jax_fcm.pw_pw(y, k1.reshape((1, 1, c, 4 * c)), k2.reshape((1, 1, 4 * c, c)), b1, b2,
                              pw1_activation="gelu_exact")
        else:
            y = self.pwconv2(self._expansion(y, dtype))
        return x + (y * self.gamma[...].astype(y.dtype)).astype(x.dtype)

    def _as_one_call(self, x, c: int):
        """The block as one jax_fcm.convnext_block call on the stock layers' state."""
        state = (x, self.dwconv.kernel[...], self.dwconv.bias[...], self.norm.scale[...], self.norm.bias[...],
                 self.pwconv1.kernel[...], self.pwconv1.bias[...], self.pwconv2.kernel[...], self.pwconv2.bias[...],
                 self.gamma[...])
        y, dw_kernel, dw_bias, ln_scale, ln_bias, k1, b1, k2, b2, gamma = nnx.nn.dtypes.promote_dtype(
            state, dtype=self.dtype)
        y = jax_fcm.convnext_block(y, dw_kernel, dw_bias, ln_scale, ln_bias, k1.reshape((1, 1, c, 4 * c)), b1,
                                   k2.reshape((1, 1, 4 * c, c)), b2, gamma, eps=1e-6, activation="gelu_exact",
                                   implementation="kernel")
        return y.astype(x.dtype)

    def _expansion(self, y, dtype):
        """pwconv1 + GELU: as one jax_fcm.pointwise call where ``pointwise``
        says (convnext.dense_runs_pointwise), else the Linear."""
        if not dense_runs_pointwise(self.pointwise, y.shape, self.pwconv1.out_features, dtype):
            return nnx.gelu(self.pwconv1(y), approximate=False)
        y, kernel, bias = nnx.nn.dtypes.promote_dtype((y, self.pwconv1.kernel[...], self.pwconv1.bias[...]),
                                                      dtype=self.dtype)
        return jax_fcm.pointwise(y, kernel.reshape((1, 1) + kernel.shape), bias, activation="gelu_exact",
                                 implementation="kernel")


class Downsample(nnx.Module):
    """LayerNorm (``norm``) -> 2x2 stride-2 conv (``conv``) between stages."""

    def __init__(self, in_features: int, out_features: int, *, dtype: Any, param_dtype: Any, rngs: nnx.Rngs):
        common = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.norm = nnx.LayerNorm(in_features, epsilon=1e-6, **common)
        self.conv = nnx.Conv(in_features, out_features, (2, 2), strides=2, padding="VALID", **common)

    def __call__(self, x):
        return self.conv(self.norm(x))


class ConvNeXt(nnx.Module):
    """``variant`` "tiny" or "small", or explicit ``depths`` / ``dims``; the
    architecture and ``fusion`` of flax_models.ConvNeXt."""

    def __init__(self, variant: str = "tiny", num_classes: int = 1000, fusion: str = "auto",
                 depths: Sequence[int] | None = None, dims: Sequence[int] | None = None, *, dtype: Any = None,
                 param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        if variant not in CONVNEXT_VARIANTS:
            raise ValueError(f"variant must be one of {tuple(CONVNEXT_VARIANTS)}; got {variant!r}")
        if fusion not in CONVNEXT_FUSION:
            raise ValueError(f"fusion must be one of {CONVNEXT_FUSION}; got {fusion!r}")
        depths = tuple(depths or CONVNEXT_VARIANTS[variant][0])
        dims = tuple(dims or CONVNEXT_VARIANTS[variant][1])
        use_kernel = fusion == "always" or (fusion == "auto" and planner.use_depthwise_kernel(7, 1))
        pointwise = {"auto": "auto", "always": True, "never": False}[fusion]
        common = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.stem_conv = nnx.Conv(3, dims[0], (4, 4), strides=4, padding="VALID", **common)
        self.stem_norm = nnx.LayerNorm(dims[0], epsilon=1e-6, **common)
        self.downsamples = nnx.List([Downsample(a, b, **common) for a, b in zip(dims, dims[1:])])
        self.stages = nnx.List([nnx.List([ConvNeXtBlock(dim, use_kernel=use_kernel, pointwise=pointwise, **common)
                                          for _ in range(depth)]) for depth, dim in zip(depths, dims)])
        self.head_norm = nnx.LayerNorm(dims[-1], epsilon=1e-6, **common)
        self.head = nnx.Linear(dims[-1], num_classes, **common)
        self.dense = pointwise  # the stem conv's use_kernel

    def stem(self, x):
        """The 4x4 stride-4 patchify conv: jax_fcm.conv2d where conv_runs_conv2d
        says (``fusion``), else the nnx.Conv."""
        conv = self.stem_conv
        if not conv_runs_conv2d(self.dense, x.shape, conv.kernel.shape, 4, "VALID"):
            return conv(x)
        x, kernel, bias = nnx.nn.dtypes.promote_dtype((x, conv.kernel[...], conv.bias[...]), dtype=conv.dtype)
        return jax_fcm.conv2d(x, kernel, bias, strides=4, padding="VALID", implementation="kernel")

    def __call__(self, x):
        x = self.stem_norm(self.stem(x))
        for stage, blocks in enumerate(self.stages):
            if stage > 0:
                x = self.downsamples[stage - 1](x)
            for block in blocks:
                x = block(x)
        return self.head(self.head_norm(jnp.mean(x, axis=(1, 2))))


def _linen_path(path: tuple) -> tuple:
    """The Linen ConvNeXt's parameter path for a path of the NNX ConvNeXt's state."""
    if path[0] == "stages":  # ("stages", s, i, ...) -> ("stage{s}_block{i}", ...)
        return (f"stage{path[1]}_block{path[2]}",) + tuple(path[3:])
    if path[0] == "downsamples":  # ("downsamples", j, "norm" | "conv", ...) -> ("down{j+1}_norm" | ..., ...)
        return (f"down{path[1] + 1}_{path[2]}",) + tuple(path[3:])
    return tuple(path)


def load_linen_convnext(model: ConvNeXt, variables) -> None:
    """Sets an NNX ConvNeXt's parameters, in place, from the variables of the
    Linen flax_models.ConvNeXt of the same architecture: a Linen checkpoint,
    or torchvision's weights through flax_models.convnext_from_torchvision.
    Every parameter of each model must have its counterpart (same shapes)."""
    params = variables["params"]
    used = []

    def value(path, leaf):
        keys = _linen_path(tuple(k.key for k in path if isinstance(k, jax.tree_util.DictKey)))
        tree = params
        for key in keys:
            if key not in tree:
                raise KeyError(f"the Linen variables have no {'/'.join(keys)} (not the same ConvNeXt?)")
            tree = tree[key]
        if tuple(tree.shape) != tuple(leaf.shape):
            raise ValueError(f"{'/'.join(keys)}: the Linen parameter is {tuple(tree.shape)}, the NNX one "
                             f"{tuple(leaf.shape)}")
        used.append(keys)
        return jnp.asarray(tree, leaf.dtype)

    state = jax.tree_util.tree_map_with_path(value, nnx.state(model, nnx.Param))
    if len(used) != len(jax.tree.leaves(params)):
        raise ValueError(f"the Linen variables have {len(jax.tree.leaves(params))} parameters, the NNX ConvNeXt "
                         f"{len(used)} (not the same architecture?)")
    nnx.update(model, state)
