"""Run an existing Flax model's convolutions on jax_fcm's kernels without
touching its code or its variables: inside ``with flax_models.jax_fcm_convs():``
every Linen ``nn.Conv`` or NNX ``nnx.Conv`` call a jax_fcm op takes runs as
that op, reading the module's own ``kernel`` and ``bias``:

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
``nn.ConvLocal``, subclasses, Linen initialization, NNX explicit output
sharding - runs the stock module. BatchNorm stays a separate layer here (the
fused layers of this package fold it)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools

import flax.linen as nn
from flax import nnx
from jax import lax

import jax_fcm
from jax_fcm import _args

@dataclasses.dataclass(frozen=True)
class ConvCall:
    """What decides which op takes a call of a Linen or NNX Conv: its window
    as the module reads it (an int kernel_size is a 1-D window; strides and
    dilations broadcast to its rank), groups, output features, and whether it
    is a plain convolution (no mask, custom conv function or output dtype)."""

    kernel_size: tuple[int, ...]
    strides: tuple[int, ...]
    input_dilation: tuple[int, ...]
    kernel_dilation: tuple[int, ...]
    padding: object
    feature_group_count: int
    features: int
    plain: bool

    @classmethod
    def of(cls, conv, features: int, plain: bool) -> ConvCall:
        kernel_size = (conv.kernel_size,) if isinstance(conv.kernel_size, int) else tuple(conv.kernel_size)

        def broadcast(value):
            value = 1 if value is None else value
            return (value,) * len(kernel_size) if isinstance(value, int) else tuple(value)

        return cls(kernel_size, broadcast(conv.strides), broadcast(conv.input_dilation),
                   broadcast(conv.kernel_dilation), conv.padding, conv.feature_group_count, features,
                   plain and conv.mask is None)


def linen_call(conv: nn.Conv) -> ConvCall:
    plain = conv.conv_general_dilated is None and conv.conv_general_dilated_cls is None
    return ConvCall.of(conv, conv.features, plain)


def nnx_call(conv) -> ConvCall:
    plain = conv.conv_general_dilated is lax.conv_general_dilated and conv.preferred_element_type is None
    return ConvCall.of(conv, conv.out_features, plain)


def _padding(padding):
    """A Conv's padding as jax_fcm takes it, or None (circular, reflect, causal)."""
    padding = nn.linear.canonicalize_padding(padding, 2)
    if isinstance(padding, str):
        return padding if padding.upper() in ("SAME", "VALID") else None
    return tuple(tuple(p) for p in padding)


def conv_op(call: ConvCall, x_shape, kinds) -> str | None:
    """Which jax_fcm op (one of ``kinds``: "depthwise", "pointwise", "dense")
    runs this conv call, or None for the stock module."""
    if (len(call.kernel_size) != 2 or len(x_shape) < 4 or not call.plain or call.input_dilation != (1, 1)
            or call.kernel_dilation != (1, 1)):
        return None
    padding = _padding(call.padding)
    if padding is None:
        return None
    c, kernel_size, strides = x_shape[-1], call.kernel_size, call.strides
    if call.feature_group_count == c == call.features and c > 1:
        k = kernel_size[0]
        square = kernel_size == (k, k) and strides[0] == strides[1] in (1, 2)
        return "depthwise" if "depthwise" in kinds and square and k in _args.SUPPORTED_KERNEL_SIZES else None
    if call.feature_group_count != 1:
        return None
    if kernel_size == (1, 1) and strides == (1, 1) and padding in ("SAME", "VALID", ((0, 0), (0, 0))):
        return "pointwise" if "pointwise" in kinds else None
    return "dense" if "dense" in kinds else None


def run_op(kind: str, call: ConvCall, x, kernel, bias, precision):
    """The conv as the jax_fcm op conv_op chose (x, kernel, bias already promoted)."""
    padding = _padding(call.padding)
    if kind == "depthwise":
        return jax_fcm.depthwise(x, kernel, bias, strides=call.strides[0], padding=padding, precision=precision)
    if kind == "pointwise":
        return jax_fcm.pointwise(x, kernel, bias, precision=precision)
    return jax_fcm.conv2d(x, kernel, bias, strides=call.strides, padding=padding, precision=precision)


def _linen_interceptor(kinds, next_fun, args, kwargs, context):
    conv = context.module
    if type(conv) is not nn.Conv or context.method_name != "__call__" or conv.is_initializing():
        return next_fun(*args, **kwargs)
    x = args[0] if args else kwargs.get("inputs")
    call = linen_call(conv)
    kind = conv_op(call, x.shape, kinds) if x is not None and not kwargs.keys() - {"inputs"} else None
    if not kind:
        return next_fun(*args, **kwargs)
    params = conv.variables["params"]
    x, kernel, bias = conv.promote_dtype(x, params["kernel"], params.get("bias"), dtype=conv.dtype)
    return run_op(kind, call, x, kernel, bias, conv.precision)


def _nnx_conv_call(original, kinds):
    """nnx.Conv.__call__ running the calls conv_op takes as jax_fcm ops."""

    def __call__(self, inputs, out_sharding=None):
        if type(self) is not nnx.Conv or out_sharding is not None:
            return original(self, inputs, out_sharding)
        call = nnx_call(self)
        kind = conv_op(call, inputs.shape, kinds)
        if not kind:
            return original(self, inputs, out_sharding)
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = self.promote_dtype((inputs, self.kernel[...], bias), dtype=self.dtype)
        return run_op(kind, call, x, kernel, bias, self.precision)

    return __call__


@contextlib.contextmanager
def jax_fcm_convs(depthwise: bool = True, pointwise: bool = True, dense: bool = True):
    """Within the context, Linen ``nn.Conv`` and NNX ``nnx.Conv`` calls of the
    kinds switched on run as jax_fcm ops (see the module docstring). It acts
    while a function is traced, so trace inside it: a function jax.jit has
    already traced outside keeps that (stock) trace for the same input
    shapes::

        with flax_models.jax_fcm_convs():
            logits = jax.jit(model.apply)(variables, images)
    """
    kinds = frozenset(name for name, on in (("depthwise", depthwise), ("pointwise", pointwise), ("dense", dense))
                      if on)
    original = nnx.Conv.__call__
    # The class attribute (every instance, process-wide while the context is open), restored on exit.
    nnx.Conv.__call__ = _nnx_conv_call(original, kinds)
    try:
        with nn.intercept_methods(functools.partial(_linen_interceptor, kinds)):
            yield
    finally:
        nnx.Conv.__call__ = original
