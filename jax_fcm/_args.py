"""Argument checking and normalization shared by the ops. Every check raises a
ValueError/TypeError naming the argument, before anything reaches the FFI."""

from __future__ import annotations

from typing import Callable, Sequence

import jax.numpy as jnp
import numpy as np
from jax import lax

SUPPORTED_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
SUPPORTED_KERNEL_SIZES = (3, 5, 7)
SUPPORTED_STRIDES = (1, 2)

Padding = tuple[tuple[int, int], tuple[int, int]]


def resolve_implementation(implementation, refusal: str | None, kernel_faster: Callable[[], bool], *,
                           kernel: str = "kernel", fallback: str = "xla") -> str:
    """`kernel` or `fallback` (the op's names for its kernel and its other
    path) for an op whose default (None) runs its kernel only where the kernel
    takes the call (``refusal`` None) and the planner says it measured faster
    (``kernel_faster()``, asked only then); `kernel` with a refusal raises it
    as a ValueError; any other choice is returned as it is."""
    if implementation is None:
        return kernel if refusal is None and kernel_faster() else fallback
    if implementation == kernel and refusal is not None:
        raise ValueError(refusal)
    return implementation


def check_dtype(x, name: str) -> jnp.dtype:
    dtype = jnp.dtype(x.dtype)
    if dtype not in SUPPORTED_DTYPES:
        names = ", ".join(d.name for d in SUPPORTED_DTYPES)
        raise TypeError(f"{name} must have dtype {names}; got {dtype.name}")
    return dtype


def check_operands(arrays: dict, optional: dict) -> jnp.dtype:
    """The ops' common operand checks: every entry of `arrays` (the first is
    x) is an array, x is NHWC with extra leading batch axes allowed, and x's
    dtype is supported and shared by every array and every non-None entry of
    `optional` (biases). Returns the dtype."""
    for name, a in arrays.items():
        if not hasattr(a, "shape") or not hasattr(a, "dtype"):
            raise TypeError(f"{name} must be an array; got {type(a).__name__}")
    x = next(iter(arrays.values()))
    if x.ndim < 4:
        raise ValueError(f"x must be NHWC with rank >= 4 (extra leading batch axes allowed); got shape {x.shape}")
    dtype = check_dtype(x, "x")
    check_same_dtype(dtype, {**dict(list(arrays.items())[1:]), **optional})
    return dtype


def check_same_dtype(dtype: jnp.dtype, arrays: dict) -> None:
    for name, a in arrays.items():
        if a is not None and jnp.dtype(a.dtype) != dtype:
            raise TypeError(
                f"{name} has dtype {jnp.dtype(a.dtype).name} but x has {dtype.name}; "
                "cast the parameters to the input dtype (as flax's promote_dtype does)"
            )


def check_shape(a, expected: tuple, name: str, what: str) -> None:
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {what} = {tuple(expected)}; got {tuple(a.shape)}")


def depthwise_kernel_size(kernel, channels: int, name: str = "dw_kernel", channel_name: str = "C") -> int:
    """k of a (k, k, 1, channels) depthwise kernel, k in SUPPORTED_KERNEL_SIZES."""
    what = f"(k, k, 1, {channel_name})"
    if kernel.ndim != 4 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"{name} must have shape {what}; got {kernel.shape}")
    k = kernel.shape[0]
    if k not in SUPPORTED_KERNEL_SIZES:
        raise ValueError(f"{name} size k must be one of {SUPPORTED_KERNEL_SIZES}; got {k}")
    check_shape(kernel, (k, k, 1, channels), name, what)
    return k


def pointwise_features(kernel, channels: int, name: str, what: str) -> int:
    """The output channels of a (1, 1, channels, out) 1x1 kernel; `what` names
    the shape in messages, e.g. "(1, 1, C, Cout)"."""
    if kernel.ndim != 4:
        raise ValueError(f"{name} must have shape {what}; got {kernel.shape}")
    out = kernel.shape[-1]
    check_shape(kernel, (1, 1, channels, out), name, what)
    return out


def normalize_strides(strides, name: str = "strides") -> int:
    """int or (s, s) -> s; only equal strides of 1 or 2 are supported."""
    if isinstance(strides, int) and not isinstance(strides, bool):
        pair = (strides, strides)
    elif isinstance(strides, Sequence) and len(strides) == 2 and all(isinstance(s, int) for s in strides):
        pair = tuple(strides)
    else:
        raise ValueError(f"{name} must be an int or a pair of ints; got {strides!r}")
    if pair[0] != pair[1] or pair[0] not in SUPPORTED_STRIDES:
        raise ValueError(f"{name} must be 1 or 2 (equal in H and W); got {strides!r}")
    return pair[0]


def _same_padding(size: int, k: int, s: int) -> tuple[int, int]:
    # TF/Flax "SAME": output = ceil(size / s); the extra pixel goes after.
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def normalize_padding(padding, h: int, w: int, k: int, s: int, name: str = "padding") -> Padding:
    """Returns ((top, bottom), (left, right)) for "SAME", "VALID", an int, a pair
    of ints (symmetric per dimension) or a pair of (before, after) pairs."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "SAME":
            return _same_padding(h, k, s), _same_padding(w, k, s)
        if mode == "VALID":
            return (0, 0), (0, 0)
        raise ValueError(f"{name} must be 'SAME', 'VALID' or explicit ((top, bottom), (left, right)); got {padding!r}")
    if isinstance(padding, int) and not isinstance(padding, bool):
        pads = ((padding, padding), (padding, padding))
    elif isinstance(padding, Sequence) and len(padding) == 2 and all(isinstance(p, int) for p in padding):
        pads = ((padding[0], padding[0]), (padding[1], padding[1]))
    elif (
        isinstance(padding, Sequence)
        and len(padding) == 2
        and all(isinstance(p, Sequence) and len(p) == 2 and all(isinstance(v, int) for v in p) for p in padding)
    ):
        pads = (tuple(padding[0]), tuple(padding[1]))
    else:
        raise ValueError(f"{name} must be 'SAME', 'VALID' or explicit ((top, bottom), (left, right)); got {padding!r}")
    if any(v < 0 for p in pads for v in p):
        raise ValueError(f"{name} must be non-negative; got {padding!r}")
    return pads


def window(strides, padding, h: int, w: int, k: int) -> tuple[int, Padding, int, int]:
    """(stride, ((top, bottom), (left, right)), Ho, Wo) of a k x k window over
    an h x w input; raises if the padding leaves no output pixels."""
    stride = normalize_strides(strides)
    pads = normalize_padding(padding, h, w, k, stride)
    ho, wo = output_size(h, k, stride, pads[0]), output_size(w, k, stride, pads[1])
    if ho < 1 or wo < 1:
        raise ValueError(f"padding {padding!r} leaves no output pixels for input {h}x{w} and kernel {k}")
    return stride, pads, ho, wo


def positive_strides(strides, name: str = "strides") -> tuple[int, int]:
    """int or (sh, sw) -> (sh, sw), each >= 1 (any stride: the dense conv's)."""
    if isinstance(strides, int) and not isinstance(strides, bool):
        pair = (strides, strides)
    elif (isinstance(strides, Sequence) and len(strides) == 2
          and all(isinstance(s, int) and not isinstance(s, bool) for s in strides)):
        pair = tuple(strides)
    else:
        raise ValueError(f"{name} must be an int or a pair of ints; got {strides!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be >= 1; got {strides!r}")
    return pair


def dense_window(strides, padding, h: int, w: int, kh: int, kw: int) -> tuple[tuple[int, int], Padding, int, int]:
    """((sh, sw), ((top, bottom), (left, right)), Ho, Wo) of a kh x kw window
    over an h x w input with any strides; raises if no output pixel is left."""
    sh, sw = positive_strides(strides)
    if isinstance(padding, str) and padding.upper() == "SAME":
        pads = _same_padding(h, kh, sh), _same_padding(w, kw, sw)
    else:
        pads = normalize_padding(padding, h, w, kh, sh)  # (k and s only matter for "SAME")
    ho, wo = output_size(h, kh, sh, pads[0]), output_size(w, kw, sw, pads[1])
    if ho < 1 or wo < 1:
        raise ValueError(f"padding {padding!r} leaves no output pixels for input {h}x{w} and kernel {kh}x{kw}")
    return (sh, sw), pads, ho, wo


def window_attrs(stride: int, padding: Padding) -> dict:
    """The FFI attributes of a square window's stride and padding, as the
    fused DW -> PW targets decode them (decode_window_and_tile)."""
    (top, bottom), (left, right) = padding
    return dict(stride=np.int64(stride), pad_top=np.int64(top), pad_bottom=np.int64(bottom),
                pad_left=np.int64(left), pad_right=np.int64(right))


def output_size(size: int, k: int, s: int, pads: tuple[int, int]) -> int:
    span = size + pads[0] + pads[1] - k
    return span // s + 1 if span >= 0 else 0


def normalize_precision(precision) -> lax.Precision:
    """lax-style precision -> the strongest lax.Precision it asks for."""
    if precision is None:
        return lax.Precision.DEFAULT
    if isinstance(precision, (tuple, list)):
        if len(precision) != 2:
            raise ValueError(f"precision must be a lax.Precision or a pair of them; got {precision!r}")
        a, b = (normalize_precision(p) for p in precision)
        return max(a, b, key=lambda p: p.value)
    try:
        return precision if isinstance(precision, lax.Precision) else lax.Precision(precision)
    except (ValueError, TypeError) as err:
        raise ValueError(f"precision must be None, a lax.Precision or its name; got {precision!r}") from err


def full_fp32(precision: lax.Precision) -> bool:
    """lax semantics for float32 on the GPU: DEFAULT runs the GEMMs on TF32
    tensor cores (as XLA does); HIGH and HIGHEST ask for full fp32 (the
    kernels' pw_math 1)."""
    return precision in (lax.Precision.HIGH, lax.Precision.HIGHEST)


INT32_MAX = 2**31 - 1


def check_fused_index_range(h: int, w: int, c: int, k: int, cout: int, ho: int, wo: int) -> None:
    """The fused kernels index within one image, the taps and the pointwise
    matrix with 32-bit offsets (dw_pw_offsets_fit_int32 in C++)."""
    sizes = {"H*W*C (one input image)": h * w * c, "k*k*C (the depthwise taps)": k * k * c,
             "C*Cout (the pointwise kernel)": c * cout, "Ho*Wo*Cout (one output image)": ho * wo * cout}
    for what, size in sizes.items():
        if size > INT32_MAX:
            raise ValueError(f"{what} = {size} elements is more than the fused kernels index (2**31 - 1); "
                             "use implementation='xla'")
