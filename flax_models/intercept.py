"""Run an existing Linen model's convolutions on jax_fcm's kernels without
touching its code or its variables: inside ``with flax_models.jax_fcm_convs():``
every ``nn.Conv`` call a jax_fcm op takes runs as that op, reading the
module's own ``kernel`` and ``bias``:

- depthwise (``feature_group_count == features ==`` input channels, k x k
  with k in {3, 5, 7}, equal strides 1 or 2) -> ``jax_fcm.depthwise``;
- 1 x 1, stride 1, no padding (effectively) -> ``jax_fcm.pointwise``;
- any other ungrouped 2-D convolution -> ``jax_fcm.conv2d``.

The pointwise and dense ops run their kernel where the planner says it
measured faster than XLA's convolution and XLA's otherwise (their default
``implementation=None``); the depthwise kernel measured faster than XLA's on
every layer of its suite.
Everything else - grouped convs, dilation, masks, circular / reflect /
causal padding, a custom ``conv_general_dilated``, unbatched inputs,
``nn.ConvLocal``, initialization - runs the stock module. BatchNorm stays a
separate layer here (the fused layers of this package fold it)."""

from __future__ import annotations

import contextlib
import functools

import flax.linen as nn

import jax_fcm

DEPTHWISE_KERNELS = (3, 5, 7)


def _window(conv: nn.Conv) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """kernel_size, strides, input and kernel dilation as nn.Conv reads them:
    an int kernel_size is a 1-D window; the others broadcast to its rank."""
    kernel_size = (conv.kernel_size,) if isinstance(conv.kernel_size, int) else tuple(conv.kernel_size)

    def broadcast(value):
        value = 1 if value is None else value
        return (value,) * len(kernel_size) if isinstance(value, int) else tuple(value)

    return kernel_size, broadcast(conv.strides), broadcast(conv.input_dilation), broadcast(conv.kernel_dilation)


def _padding(padding):
    """nn.Conv's padding as jax_fcm takes it, or None (circular, reflect, causal)."""
    padding = nn.linear.canonicalize_padding(padding, 2)
    if isinstance(padding, str):
        return padding if padding.upper() in ("SAME", "VALID") else None
    return tuple(tuple(p) for p in padding)


def conv_op(conv: nn.Conv, x_shape, kinds) -> str | None:
    """Which jax_fcm op (one of ``kinds``: "depthwise", "pointwise", "dense")
    runs this nn.Conv call, or None for the stock module."""
    kernel_size, strides, input_dilation, kernel_dilation = _window(conv)
    if (len(kernel_size) != 2 or len(x_shape) < 4 or conv.mask is not None or conv.conv_general_dilated is not None
            or conv.conv_general_dilated_cls is not None or input_dilation != (1, 1) or kernel_dilation != (1, 1)):
        return None
    padding = _padding(conv.padding)
    if padding is None:
        return None
    c = x_shape[-1]
    if conv.feature_group_count == c == conv.features and c > 1:
        k = kernel_size[0]
        square = kernel_size == (k, k) and strides[0] == strides[1] in (1, 2)
        return "depthwise" if "depthwise" in kinds and square and k in DEPTHWISE_KERNELS else None
    if conv.feature_group_count != 1:
        return None
    if kernel_size == (1, 1) and strides == (1, 1) and padding in ("SAME", "VALID", ((0, 0), (0, 0))):
        return "pointwise" if "pointwise" in kinds else None
    return "dense" if "dense" in kinds else None


def _run(kind: str, conv: nn.Conv, x):
    params = conv.variables["params"]
    x, kernel, bias = conv.promote_dtype(x, params["kernel"], params.get("bias"), dtype=conv.dtype)
    _, strides, _, _ = _window(conv)
    padding, precision = _padding(conv.padding), conv.precision
    if kind == "depthwise":
        return jax_fcm.depthwise(x, kernel, bias, strides=strides[0], padding=padding, precision=precision)
    if kind == "pointwise":
        return jax_fcm.pointwise(x, kernel, bias, precision=precision)
    return jax_fcm.conv2d(x, kernel, bias, strides=strides, padding=padding, precision=precision)


def _interceptor(kinds, next_fun, args, kwargs, context):
    conv = context.module
    if type(conv) is not nn.Conv or context.method_name != "__call__" or conv.is_initializing():
        return next_fun(*args, **kwargs)
    x = args[0] if args else kwargs.get("inputs")
    kind = conv_op(conv, x.shape, kinds) if x is not None and not kwargs.keys() - {"inputs"} else None
    return _run(kind, conv, x) if kind else next_fun(*args, **kwargs)


@contextlib.contextmanager
def jax_fcm_convs(depthwise: bool = True, pointwise: bool = True, dense: bool = True):
    """Within the context, Linen ``nn.Conv`` calls of the kinds switched on run
    as jax_fcm ops (see the module docstring). It acts while a function is
    traced: call (or first call) the jitted function inside it::

        with flax_models.jax_fcm_convs():
            logits = jax.jit(model.apply)(variables, images)
    """
    kinds = {name for name, on in (("depthwise", depthwise), ("pointwise", pointwise), ("dense", dense)) if on}
    with nn.intercept_methods(functools.partial(_interceptor, frozenset(kinds))):
        yield
