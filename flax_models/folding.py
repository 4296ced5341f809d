"""BatchNorm folding: inference-mode BN after a bias-free convolution becomes a
per-output-channel scale on the kernel and a bias, so the fused kernel's
epilogue does all of it; and the fused call on folded weights that the Linen
and NNX layers share; and the layers' decision of which kernels run."""

from __future__ import annotations

import jax.numpy as jnp

import jax_fcm
from jax_fcm import mbconv_op, planner, pw_dw_op
from jax_fcm.activations import normalize_activation


def fold_batch_norm(kernel, bn_params, bn_stats, epsilon: float):
    """Returns (kernel * s, beta - mean * s), s = scale / sqrt(var + eps), in float32.

    kernel: HWIO with the output channel last (depthwise (k, k, 1, C) or
    pointwise (1, 1, C, Cout)); bn_params {"scale", "bias"} (either may be
    absent, as with nn.BatchNorm(use_scale=False)); bn_stats {"mean", "var"}.
    """
    mean = jnp.asarray(bn_stats["mean"], jnp.float32)
    var = jnp.asarray(bn_stats["var"], jnp.float32)
    gamma = jnp.asarray(bn_params.get("scale", jnp.ones_like(mean)), jnp.float32)
    beta = jnp.asarray(bn_params.get("bias", jnp.zeros_like(mean)), jnp.float32)
    scale = gamma * jnp.reciprocal(jnp.sqrt(var + epsilon))
    return jnp.asarray(kernel, jnp.float32) * scale, beta - mean * scale


def folded_dw_pw(x, dw_kernel, dw_bn, pw_kernel, pw_bn, *, epsilon: float, dtype=None, split: bool = False,
                 strides=1, padding="SAME", dw_activation=None, pw_activation=None):
    """Bias-free DW and PW convolutions each followed by an inference-mode
    BatchNorm (dw_bn, pw_bn: (bn_params, bn_stats) as for fold_batch_norm),
    as one jax_fcm.dw_pw kernel, or with ``split`` as jax_fcm.depthwise then
    XLA's 1x1 convolution. Computes in ``dtype`` (x's dtype when None)."""
    dw_kernel, dw_bias = fold_batch_norm(dw_kernel, *dw_bn, epsilon)
    pw_kernel, pw_bias = fold_batch_norm(pw_kernel, *pw_bn, epsilon)
    dtype = dtype if dtype is not None else x.dtype
    cast = lambda a: jnp.asarray(a, dtype)  # noqa: E731
    return jax_fcm.dw_pw(cast(x), cast(dw_kernel), cast(pw_kernel), cast(dw_bias), cast(pw_bias), strides=strides,
                         padding=padding, dw_activation=dw_activation, pw_activation=pw_activation,
                         implementation="split" if split else None)


def folded_pointwise(x, kernel, bn, *, epsilon: float, dtype=None, activation=None):
    """A bias-free 1x1 convolution followed by an inference-mode BatchNorm
    (bn: (bn_params, bn_stats) as for fold_batch_norm) and the activation, as
    one jax_fcm.pointwise kernel."""
    kernel, bias = fold_batch_norm(kernel, *bn, epsilon)
    dtype = dtype if dtype is not None else x.dtype
    cast = lambda a: jnp.asarray(a, dtype)  # noqa: E731
    return jax_fcm.pointwise(cast(x), cast(kernel), cast(bias), activation=activation, implementation="kernel")


def folded_conv(x, kernel, bn, *, epsilon: float, dtype=None, strides=1, padding="SAME", activation=None):
    """A bias-free k x k convolution followed by an inference-mode BatchNorm
    and the activation, as one jax_fcm.conv2d kernel."""
    kernel, bias = fold_batch_norm(kernel, *bn, epsilon)
    dtype = dtype if dtype is not None else x.dtype
    cast = lambda a: jnp.asarray(a, dtype)  # noqa: E731
    return jax_fcm.conv2d(cast(x), cast(kernel), cast(bias), strides=strides, padding=padding, activation=activation,
                          implementation="kernel")


def conv_bn_kernel(fused, x, features: int, kernel_size: int, strides: int, padding="SAME",
                   dtype=None) -> str | None:
    """Which kernel a ConvBN in inference mode runs as, BatchNorm folded:
    "pointwise" (a 1x1 stride-1 convolution: jax_fcm.pointwise), "conv2d"
    (any other: jax_fcm.conv2d), or None for the stock layers. With
    ``fused=True`` always; with "auto" where jax_fcm.planner
    (use_pointwise_kernel, use_conv2d_kernel) says it measured faster than XLA's."""
    if not (fused is True or fused == "auto" or fused is False):
        raise ValueError(f"fused must be True, False or 'auto'; got {fused!r}")
    if fused is False:
        return None
    if kernel_size == 1 and strides == 1:
        dtype = dtype if dtype is not None else x.dtype
        return "pointwise" if fused is True or planner.use_pointwise_kernel(x.shape, features, dtype) else None
    kernel_shape = (kernel_size, kernel_size, x.shape[-1], features)
    return "conv2d" if fused is True or planner.use_conv2d_kernel(x.shape, kernel_shape, strides, padding) else None


def folded_conv_bn(kind: str, x, kernel, bn, *, epsilon: float, dtype, strides, padding, activation):
    """The inference-mode ConvBN as the kernel conv_bn_kernel picked."""
    if kind == "pointwise":
        return folded_pointwise(x, kernel, bn, epsilon=epsilon, dtype=dtype, activation=activation)
    return folded_conv(x, kernel, bn, epsilon=epsilon, dtype=dtype, strides=strides, padding=padding,
                       activation=activation)


def expansion_fused(fused) -> bool | str:
    """The ``fused`` of a block's 1x1 ConvBN (an inverted residual's
    expansion, an EfficientNet block's projection) for the block's own
    ``fused``: stock with False, the planner's choice otherwise."""
    return False if fused is False else "auto"


def folded_mbconv(x, expand_kernel, expand_bn, dw_kernel, dw_bn, project_kernel, project_bn, *, epsilon: float,
                  dtype=None, **mbconv_kwargs):
    """jax_fcm.mbconv of a whole inverted-residual block whose three bias-free
    convolutions are each followed by an inference-mode BatchNorm (folded)."""
    dtype = dtype if dtype is not None else x.dtype
    cast = lambda a: jnp.asarray(a, dtype)  # noqa: E731
    (we, be), (wd, bd), (wp, bp) = (fold_batch_norm(kernel, *bn, epsilon) for kernel, bn in
                                    ((expand_kernel, expand_bn), (dw_kernel, dw_bn), (project_kernel, project_bn)))
    return jax_fcm.mbconv(cast(x), cast(we), cast(wd), cast(wp), cast(be), cast(bd), cast(bp), **mbconv_kwargs)


def folded_pw_dw(x, expand_kernel, expand_bn, dw_kernel, dw_bn, *, epsilon: float, dtype=None, implementation=None,
                 strides=1, padding="SAME", activation=None):
    """A bias-free 1x1 expansion and a bias-free depthwise conv, each followed
    by an inference-mode BatchNorm (folded) and the activation, as
    jax_fcm.pw_dw with `implementation` (None: the planner's path; "fused"
    where the kernel takes the call, "split" where it does not); without
    an expansion (expand_kernel None) the depthwise conv alone, as
    jax_fcm.depthwise."""
    dtype = dtype if dtype is not None else x.dtype
    cast = lambda a: jnp.asarray(a, dtype)  # noqa: E731
    wd, bd = fold_batch_norm(dw_kernel, *dw_bn, epsilon)
    if expand_kernel is None:
        return jax_fcm.depthwise(cast(x), cast(wd), cast(bd), strides=strides, padding=padding, activation=activation)
    we, be = fold_batch_norm(expand_kernel, *expand_bn, epsilon)
    if implementation == "fused":  # the split path where the input window (all Cin) outgrows shared memory
        implementation = pw_dw_op.fused_where_it_fits(dw_kernel.shape[0], strides, x.shape[-1], dtype)
    return jax_fcm.pw_dw(cast(x), cast(we), cast(wd), cast(be), cast(bd), strides=strides, padding=padding,
                         pw_activation=activation, dw_activation=activation, implementation=implementation)


def fuses_block(fused, x, hidden: int, features: int, kernel_size: int, strides: int, dtype=None,
                activation: str = "relu6") -> bool:
    """Whether an InvertedResidual with an expansion (to `hidden` channels)
    runs as one jax_fcm.mbconv kernel: with ``fused="block"`` wherever the
    kernel fits the GPU, with "auto" where jax_fcm.planner.should_fuse_block
    also says it measured faster than the expansion + DW->PW pair path; not
    with True (the pair only) or False. Otherwise the block takes the pair
    path (SeparableConv's own decision)."""
    dtype = dtype if dtype is not None else x.dtype
    if fused not in ("block", "auto"):
        fuses(fused, x, features, kernel_size, strides, dtype)  # raises on a bad value
        return False
    if not mbconv_op.fits(x.shape, hidden, features, kernel_size, strides, dtype):
        return False  # e.g. float32 with a wide input at stride 2: the input window outgrows shared memory
    if fused == "auto":
        return planner.should_fuse_block(x.shape, features, kernel_size, strides, jnp.dtype(dtype).itemsize,
                                         normalize_activation(activation, "activation"))
    return True


def fuses(fused, x, features: int, kernel_size: int, strides: int, dtype=None) -> bool:
    """Whether a SeparableConv whose ``fused`` is True, False, "block" (the
    whole block where an InvertedResidual can; the pair otherwise: True),
    "split" (jax_fcm.depthwise + XLA's 1x1 conv) or "auto" runs the fused
    kernel on input x: "auto" asks jax_fcm.planner
    (fused only where it measured faster than XLA's two convolutions)."""
    if fused == "auto":
        itemsize = jnp.dtype(dtype if dtype is not None else x.dtype).itemsize
        return planner.should_fuse(x.shape, features, kernel_size, strides, itemsize)
    if fused == "block":
        return True
    if fused == "split":
        return False
    if isinstance(fused, bool):
        return fused
    raise ValueError(f"fused must be True, False, 'block', 'split' or 'auto'; got {fused!r}")


def pair_path(fused, x, features: int, kernel_size: int, strides: int, dtype=None) -> str:
    """How a SeparableConv runs in inference mode: "fused" (one jax_fcm.dw_pw
    kernel, where ``fuses`` says so), "split" (with fused="split", or "auto"
    where fusing does not pay: jax_fcm.depthwise, which measured faster than
    XLA's depthwise convolution on every layer timed, then XLA's 1x1
    convolution) or "stock" (the Flax layers as written: fused=False)."""
    if fuses(fused, x, features, kernel_size, strides, dtype):
        return "fused"
    if fused in ("auto", "split") and planner.use_depthwise_kernel(kernel_size, strides):
        return "split"
    return "stock"
