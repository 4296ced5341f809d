"""ConvNeXt (Liu et al. 2022) in Linen, with its 7x7 depthwise convolutions a
``DepthwiseConv``: a drop-in for ``nn.Conv(C, (k, k), feature_group_count=C)``
(same parameters, same initializers) that runs ``jax_fcm.depthwise`` (in
training too: the op has its own backward). Where the planner picks it (16-bit on Hopper,
C <= 192: the first two stages) a whole block is one ``jax_fcm.convnext_block``
call: the depthwise kernel, then LayerNorm, MLP and layer-scaled residual in
one kernel. Elsewhere a LayerNorm follows each depthwise conv; the MLP
(1x1 to 4C, GELU, 1x1 to C) runs as one ``jax_fcm.pw_pw`` kernel where the
planner measured that faster than XLA's two 1x1s, else its expansion is a
``PointwiseDense``, which runs ``jax_fcm.pointwise`` where the planner
measured it faster than XLA's, and its projection an XLA Dense. The
parameter tree is the stock model's either way.

``fusion``: "auto" runs the depthwise kernel (faster than XLA's on every
ConvNeXt layer measured, docs/benchmarks.md) and the MLP kernels where the
planner picks them; "always" runs the kernels everywhere they take the
layer; "never" is the stock model (nn.Conv and nn.Dense everywhere) with the
same parameter tree."""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

import jax_fcm
from jax_fcm import planner
from jax_fcm.activations import activation_fn
from jax_fcm.model_layers import CONVNEXT_VARIANTS
from jax_fcm.pw_pw_op import kernel_refusal

Padding = Any
CONVNEXT_FUSION = ("auto", "always", "never")


class DepthwiseConv(nn.Module):
    """``nn.Conv(features=C, kernel_size=(k, k), feature_group_count=C)`` for
    an input with C channels, same parameters ("kernel" (k, k, 1, C), "bias"
    (C,)) and initializers; ``use_kernel`` runs it as one jax_fcm.depthwise
    call (bias and ``activation`` fused), else as nn.Conv does (then the
    activation)."""

    kernel_size: int = 7
    strides: int = 1
    padding: Padding = "SAME"
    use_bias: bool = True
    activation: str | None = None
    use_kernel: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x):
        c, k = x.shape[-1], self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (k, k, 1, c), self.param_dtype)
        bias = self.param("bias", self.bias_init, (c,), self.param_dtype) if self.use_bias else None
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        return jax_fcm.depthwise(x, kernel, bias, strides=self.strides, padding=self.padding,
                                 activation=self.activation, implementation=None if self.use_kernel else "xla")


class PointwiseDense(nn.Module):
    """``nn.Dense(features)`` over the channels of an NHWC input, same
    parameters ("kernel" (C, features), "bias" (features,)) and initializers,
    + ``activation``; ``use_kernel`` True runs it as one jax_fcm.pointwise
    call (a 1x1 convolution, bias and activation fused), "auto" where
    jax_fcm.planner.use_pointwise_kernel says it measured faster than XLA's,
    False as nn.Dense does (then the activation)."""

    features: int
    activation: str | None = None
    use_kernel: bool | str = "auto"
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (c, self.features), self.param_dtype)
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        if dense_runs_pointwise(self.use_kernel, x.shape, self.features, x.dtype):
            return jax_fcm.pointwise(x, kernel.reshape((1, 1, c, self.features)), bias, activation=self.activation,
                                     implementation="kernel")
        return activation_fn(self.activation)(jnp.dot(x, kernel) + bias)


class DenseParams(nn.Module):
    """The parameters of ``nn.Dense(features)`` over ``c`` input features
    ("kernel" (c, features), "bias" (features,), nn.Dense's initializers),
    returned instead of applied: for a Dense whose math runs fused with its
    neighbour (the MLP as one jax_fcm.pw_pw call)."""

    features: int
    param_dtype: Any = jnp.float32
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, c: int):
        return (self.param("kernel", self.kernel_init, (c, self.features), self.param_dtype),
                self.param("bias", self.bias_init, (self.features,), self.param_dtype))


class DepthwiseParams(nn.Module):
    """The parameters of ``DepthwiseConv(kernel_size)`` over ``c`` channels
    ("kernel" (k, k, 1, c), "bias" (c,), its initializers), returned instead
    of applied: for a block whose math runs as one jax_fcm.convnext_block."""

    kernel_size: int = 7
    param_dtype: Any = jnp.float32
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, c: int):
        k = self.kernel_size
        return (self.param("kernel", self.kernel_init, (k, k, 1, c), self.param_dtype),
                self.param("bias", self.bias_init, (c,), self.param_dtype))


class LayerNormParams(nn.Module):
    """The parameters of ``nn.LayerNorm()`` over ``c`` features ("scale"
    ones, "bias" zeros), returned instead of applied."""

    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, c: int):
        return (self.param("scale", nn.initializers.ones_init(), (c,), self.param_dtype),
                self.param("bias", nn.initializers.zeros_init(), (c,), self.param_dtype))


def block_as_convnext_block(x_shape, c: int, dtype, use_kernel: bool, pointwise: bool | str) -> bool:
    """Whether a whole ConvNeXt block runs as one jax_fcm.convnext_block call
    (the depthwise kernel, then LayerNorm, MLP and layer-scaled residual in
    one kernel): with the depthwise kernel on (``use_kernel``) and
    ``pointwise`` True wherever the fused kernel takes the block on this
    backend, "auto" where jax_fcm.planner.layer_norm_mlp_choice also picks
    it (what the plan CLI prints), never with ``pointwise=False``."""
    from jax_fcm.convnext_block_op import kernel_refusal as block_refusal

    if not use_kernel or pointwise is False or len(x_shape) < 4 or block_refusal(dtype, c, 4 * c) is not None:
        return False
    return pointwise is True or planner.layer_norm_mlp_choice(x_shape, c, dtype)[0]


def mlp_as_pw_pw(x_shape, c: int, dtype, pointwise: bool | str) -> bool:
    """Whether the block's MLP (C -> 4C, GELU -> C) runs as one jax_fcm.pw_pw
    kernel: with ``pointwise=True`` wherever the kernel takes it, with "auto"
    where jax_fcm.planner.convnext_mlp_plan picks it (what the plan CLI
    prints: the kernel takes it and it measured faster than XLA's two 1x1
    convolutions; bfloat16/float16, H100: 1.96-2.03x on the 96-channel stage
    at N >= 8)."""
    if pointwise is False or len(x_shape) < 4:
        return False
    if pointwise is True:
        return kernel_refusal(dtype, c, 4 * c, c) is None
    return planner.convnext_mlp_plan(x_shape, c, dtype)[0] == "pw_pw"


def conv_runs_conv2d(use_kernel: bool | str, x_shape, kernel_shape, strides, padding) -> bool:
    """Whether a dense convolution (ConvNeXt's patchify stem) runs as one
    jax_fcm.conv2d call: ``use_kernel`` True, or "auto" where
    jax_fcm.planner.use_conv2d_kernel says it measured faster than XLA's
    (DenseConv and the NNX ConvNeXt's stem)."""
    if use_kernel == "auto":
        return planner.use_conv2d_kernel(x_shape, kernel_shape, strides, padding)
    return bool(use_kernel)


class DenseConv(nn.Module):
    """``nn.Conv(features, (k, k), strides, padding)`` with a bias, same
    parameters ("kernel" (k, k, Cin, features), "bias" (features,)) and
    initializers, + ``activation``; ``use_kernel`` True runs it as one
    jax_fcm.conv2d call (bias and activation fused), "auto" where
    jax_fcm.planner.use_conv2d_kernel says it measured faster than XLA's,
    False as nn.Conv does (lax.conv, + bias, then the activation)."""

    features: int
    kernel_size: int
    strides: int = 1
    padding: Padding = "SAME"
    activation: str | None = None
    use_kernel: bool | str = "auto"
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x):
        shape = (self.kernel_size, self.kernel_size, x.shape[-1], self.features)
        kernel = self.param("kernel", self.kernel_init, shape, self.param_dtype)
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        use = conv_runs_conv2d(self.use_kernel, x.shape, shape, self.strides, self.padding)
        return jax_fcm.conv2d(x, kernel, bias, strides=self.strides, padding=self.padding, activation=self.activation,
                              implementation="kernel" if use else "xla")


def dense_runs_pointwise(use_kernel: bool | str, x_shape, features: int, dtype) -> bool:
    """Whether a Dense over the channels of an NHWC input runs as one
    jax_fcm.pointwise call: ``use_kernel`` True, or "auto" where
    jax_fcm.planner.use_pointwise_kernel says it measured faster than XLA's
    (PointwiseDense and the NNX ConvNeXt block's expansion)."""
    if use_kernel == "auto":
        return len(x_shape) >= 4 and planner.use_pointwise_kernel(x_shape, features, dtype)
    return bool(use_kernel)


class ConvNeXtBlock(nn.Module):
    """7x7 depthwise conv -> LayerNorm -> 1x1 to 4C (Dense) -> GELU -> 1x1 to C
    -> layer scale -> + x. The whole block runs as one jax_fcm.convnext_block
    call where block_as_convnext_block picks it; else the MLP runs as one
    jax_fcm.pw_pw kernel where mlp_as_pw_pw picks it, else its expansion as
    PointwiseDense(use_kernel=pointwise) and its projection as nn.Dense (both
    nn.Dense with pointwise=False)."""

    use_kernel: bool = True
    pointwise: bool | str = "auto"  # the MLP's kernels (see above): "auto", True (wherever they take it), False
    layer_scale_init: float = 1e-6
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        common = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        dtype = self.dtype if self.dtype is not None else jnp.promote_types(x.dtype, self.param_dtype)
        if block_as_convnext_block(x.shape, c, dtype, self.use_kernel, self.pointwise):
            return self._as_one_call(x, c)
        if self.use_kernel:
            y = DepthwiseConv(7, padding=3, use_kernel=True, name="dwconv", **common)(x)
        else:  # the stock layer itself
            y = nn.Conv(c, (7, 7), padding=3, feature_group_count=c, name="dwconv", **common)(x)
        y = nn.LayerNorm(epsilon=1e-6, name="norm", **common)(y)
        if mlp_as_pw_pw(y.shape, c, dtype, self.pointwise):  # the same parameters as the two Dense layers
            k1, b1 = DenseParams(4 * c, self.param_dtype, name="pwconv1")(c)
            k2, b2 = DenseParams(c, self.param_dtype, name="pwconv2")(4 * c)
            y, k1, b1, k2, b2 = nn.dtypes.promote_dtype(y, k1, b1, k2, b2, dtype=self.dtype)
            y = jax_fcm.pw_pw(y, k1.reshape((1, 1, c, 4 * c)), k2.reshape((1, 1, 4 * c, c)), b1, b2,
                              pw1_activation="gelu_exact")
        elif self.pointwise is False:  # the stock layers themselves
            y = nn.gelu(nn.Dense(4 * c, name="pwconv1", **common)(y), approximate=False)
            y = nn.Dense(c, name="pwconv2", **common)(y)
        else:
            y = PointwiseDense(4 * c, "gelu_exact", use_kernel=self.pointwise, name="pwconv1", **common)(y)
            y = nn.Dense(c, name="pwconv2", **common)(y)
        gamma = self.param("gamma", nn.initializers.constant(self.layer_scale_init), (c,), self.param_dtype)
        return x + (y * gamma.astype(y.dtype)).astype(x.dtype)

    def _as_one_call(self, x, c: int):
        """The block as one jax_fcm.convnext_block call on the stock layers' parameters."""
        pd = self.param_dtype
        dw_kernel, dw_bias = DepthwiseParams(7, pd, name="dwconv")(c)
        ln_scale, ln_bias = LayerNormParams(pd, name="norm")(c)
        k1, b1 = DenseParams(4 * c, pd, name="pwconv1")(c)
        k2, b2 = DenseParams(c, pd, name="pwconv2")(4 * c)
        gamma = self.param("gamma", nn.initializers.constant(self.layer_scale_init), (c,), pd)
        args = nn.dtypes.promote_dtype(x, dw_kernel, dw_bias, ln_scale, ln_bias, k1, b1, k2, b2, gamma,
                                       dtype=self.dtype)
        y, dw_kernel, dw_bias, ln_scale, ln_bias, k1, b1, k2, b2, gamma = args
        y = jax_fcm.convnext_block(y, dw_kernel, dw_bias, ln_scale, ln_bias, k1.reshape((1, 1, c, 4 * c)), b1,
                                   k2.reshape((1, 1, 4 * c, c)), b2, gamma, eps=1e-6, activation="gelu_exact",
                                   implementation="kernel")
        return y.astype(x.dtype)


class ConvNeXt(nn.Module):
    """``variant`` "tiny" or "small", or explicit ``depths`` / ``dims``."""

    variant: str = "tiny"
    num_classes: int = 1000
    fusion: str = "auto"
    depths: Sequence[int] | None = None
    dims: Sequence[int] | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        del train  # no BatchNorm or dropout (drop path is a training-time regularizer not modelled here)
        if self.variant not in CONVNEXT_VARIANTS:
            raise ValueError(f"variant must be one of {tuple(CONVNEXT_VARIANTS)}; got {self.variant!r}")
        if self.fusion not in CONVNEXT_FUSION:
            raise ValueError(f"fusion must be one of {CONVNEXT_FUSION}; got {self.fusion!r}")
        depths, dims = CONVNEXT_VARIANTS[self.variant]
        depths, dims = tuple(self.depths or depths), tuple(self.dims or dims)
        use_kernel = self.fusion == "always" or (self.fusion == "auto" and planner.use_depthwise_kernel(7, 1))
        pointwise = {"auto": "auto", "always": True, "never": False}[self.fusion]
        common = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        x = DenseConv(dims[0], 4, strides=4, padding="VALID", use_kernel=pointwise, name="stem_conv", **common)(x)
        x = nn.LayerNorm(epsilon=1e-6, name="stem_norm", **common)(x)
        for stage, (depth, dim) in enumerate(zip(depths, dims)):
            if stage > 0:
                x = nn.LayerNorm(epsilon=1e-6, name=f"down{stage}_norm", **common)(x)
                x = nn.Conv(dim, (2, 2), strides=2, padding="VALID", name=f"down{stage}_conv", **common)(x)
            for i in range(depth):
                x = ConvNeXtBlock(use_kernel=use_kernel, pointwise=pointwise, name=f"stage{stage}_block{i}",
                                  **common)(x)
        x = nn.LayerNorm(epsilon=1e-6, name="head_norm", **common)(jnp.mean(x, axis=(1, 2)))
        return nn.Dense(self.num_classes, name="head", **common)(x)
