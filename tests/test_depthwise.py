"""jax_fcm.depthwise (standalone depthwise conv + bias + activation) against a
float32 lax reference: every dtype, kernel size, stride, padding form,
activation and odd shapes, on the CPU handler and the CUDA kernel; grads,
vmap, sharding, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import array_maker, check_ffi_rejects, max_normalized_error, run_on, xla_reference
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

import jax_fcm

DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]
PADDINGS = ["SAME", "VALID", ((1, 2), (2, 1)), 1, ((0, 9), (8, 0))]

# Max-normalized error (conftest.max_normalized_error) against a float32
# HIGHEST reference from the same rounded inputs. The kernel multiplies and
# accumulates in fp32 on every platform (no TF32) and rounds once, so 16-bit
# results are off by at most half an ulp of the output: 2**-9 (bf16) and
# 2**-11 (fp16) of the largest output, plus summation-order noise.
TOLERANCES = {"float32": 2e-6, "bfloat16": 4e-3, "float16": 1e-3}


def random_depthwise(rng, n, h, w, c, k, dtype, lead=()):
    """x, kernel, bias with unit-scale outputs."""
    arr = array_maker(rng, dtype)
    return arr(tuple(lead) + (n, h, w, c)), arr((k, k, 1, c), 1.0 / k), arr((c,), 0.5)


def f32_reference(args, **kw):
    return xla_reference(jax_fcm.depthwise, args, **kw)


def check(platform, rng, *, n=3, h=13, w=7, c=12, k=3, dtype=jnp.float32, lead=(), bias=True, **kw):
    x, kernel, b = random_depthwise(rng, n, h, w, c, k, dtype, lead)
    args = (x, kernel, b if bias else None)
    out = run_on(platform, lambda *a: jax_fcm.depthwise(*a, **kw), *args)
    assert out.dtype == jnp.dtype(dtype)
    ref = f32_reference(args, **kw)
    err = max_normalized_error(out, ref)
    tol = TOLERANCES[jnp.dtype(dtype).name]
    assert err <= tol, f"max-normalized error {err:.3g} > {tol}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", PADDINGS, ids=str)
def test_kernel_stride_padding(platform, rng, dtype, k, stride, padding):
    check(platform, rng, k=k, dtype=dtype, strides=stride, padding=padding, activation="relu6")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("act", jax_fcm.ACTIVATION_NAMES)
def test_activations(platform, rng, dtype, act):
    check(platform, rng, dtype=dtype, activation=act, strides=2)


@pytest.mark.parametrize(
    "n,h,w,c",
    [
        (1, 1, 1, 1),
        (1, 9, 17, 3),     # C not a multiple of 4: the element-wise path
        (3, 13, 1, 17),
        (1, 7, 13, 37),
        (3, 8, 8, 96),
        (1, 14, 14, 576),  # MobileNetV2's deep layers
        (3, 5, 6, 130),    # 64-channel chunks for 16-bit types, the last partial
        (1, 23, 9, 8),     # several 8 x 8 tiles, partial at the edges
    ],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("stride", [1, 2])
def test_odd_shapes(platform, rng, n, h, w, c, dtype, stride):
    check(platform, rng, n=n, h=h, w=w, c=c, dtype=dtype, strides=stride, activation="silu")


@pytest.mark.parametrize(
    "n,h,w,c",
    [
        (1, 9, 17, 3),     # C not a multiple of 4: element-wise stores
        (3, 13, 30, 37),
        (3, 14, 14, 200),
        (1, 7, 7, 300),
        (2, 9, 21, 96),
    ],
)
@pytest.mark.parametrize("k", [5, 7])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_large_kernels_odd_shapes(platform, rng, n, h, w, c, k, dtype):
    check(platform, rng, n=n, h=h, w=w, c=c, k=k, dtype=dtype, activation="gelu_exact")


@pytest.mark.parametrize(
    "n,h,w,c,padding",
    [
        (180, 9, 27, 40, "SAME"),           # 7 x 28 tiles of 32 channels, the last of each row partial
        (180, 14, 28, 37, ((1, 4), (5, 0))),  # the same with element-wise copies and stores (C % 4 != 0)
        (120, 14, 14, 192, "SAME"),         # 7 x 14 tiles of 64 channels
        (120, 16, 20, 130, "VALID"),        # the same, the last chunk partial, element-wise
    ],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_7x7_large_batches(platform, rng, n, h, w, c, padding, dtype):
    # Enough tiles (>= 4 per SM up to ~170 SMs) that the CUDA launcher picks
    # the 7x7 kernel of depthwise_rows_kernel.cuh, in each tile width.
    check(platform, rng, n=n, h=h, w=w, c=c, k=7, dtype=dtype, padding=padding, activation="relu")


def test_without_bias_and_extra_leading_axes(platform, rng):
    check(platform, rng, bias=False, lead=(2,), n=1, k=5)


def test_full_precision_is_the_same_kernel(platform, rng):
    check(platform, rng, precision="highest", k=7)


@pytest.mark.parametrize("n", [1, 3])
def test_many_images(platform, rng, n):
    # More images than the CUDA grid's y dimension holds (65535): the kernel
    # walks the rest. A cheap 1x2 image keeps the CPU run short.
    check(platform, rng, n=66000 * n, h=1, w=2, c=4, k=3)


def test_lowering_names_the_ffi_target(rng):
    x, kernel, b = random_depthwise(rng, 1, 8, 8, 16, 3, jnp.float32)
    text = jax.jit(lambda *a: jax_fcm.depthwise(*a)).lower(x, kernel, b).as_text()
    assert "jax_fcm_depthwise" in text
    xla_text = jax.jit(lambda *a: jax_fcm.depthwise(*a, implementation="xla")).lower(x, kernel, b).as_text()
    assert "jax_fcm_depthwise" not in xla_text


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding,act", [("SAME", "gelu_tanh"), ("VALID", "none"), (((4, 4), (0, 5)), "silu")],
                         ids=["same-gelu", "valid-none", "pad-over-k-1"])
def test_grad_matches_reference(platform, rng, dtype, stride, padding, act):
    # Smooth activations: a relu mask flipping on a bf16 rounding near 0
    # moves a gradient by a whole tap. Padding above k - 1 takes the lax
    # backward; the others the jax_fcm
    # backward kernel (always on the CPU, where it measured faster on a GPU).
    x, kernel, b = random_depthwise(rng, 3, 11, 9, 20, 3, dtype)
    cot = jnp.asarray(rng.standard_normal((3,) + jax_fcm.depthwise(x, kernel, b, strides=stride, padding=padding)
                                          .shape[1:]), dtype)

    def loss(impl):
        return lambda *a: jnp.vdot(jax_fcm.depthwise(*a, strides=stride, padding=padding, activation=act,
                                                     implementation=impl).astype(jnp.float32),
                                   cot.astype(jnp.float32))

    grads = run_on(platform, jax.grad(loss(None), argnums=(0, 1, 2)), x, kernel, b)
    f32_ref = run_on("cpu", jax.grad(loss("xla"), argnums=(0, 1, 2)), *(jnp.asarray(a, jnp.float32)
                                                                         for a in (x, kernel, b)))
    # Against the float32 gradient of the same rounded inputs: no worse than
    # the tolerance or lax's own gradient in the input dtype (whose kernel
    # and bias gradients are bf16 reductions, also what the lax-backward
    # paths return), whichever is looser.
    lax_own = run_on(platform, jax.grad(loss("xla"), argnums=(0, 1, 2)), x, kernel, b)
    tol = {"float32": 1e-5, "bfloat16": 2e-2}[jnp.dtype(dtype).name]
    for name, g, r, ref in zip(("x", "kernel", "bias"), grads, lax_own, f32_ref):
        assert g.dtype == jnp.dtype(dtype)
        ours, lax_err = max_normalized_error(g, ref), max_normalized_error(r, ref)
        assert ours <= max(tol, 1.25 * lax_err), f"d{name}: {ours:.3g} vs lax {lax_err:.3g}"


def test_check_grads_first_and_second_order(rng):
    x, kernel, b = random_depthwise(rng, 2, 7, 6, 5, 3, jnp.float32)
    f = lambda *a: jax_fcm.depthwise(*a, strides=2, activation="silu")  # noqa: E731
    check_grads(f, (x, kernel, b), order=2, modes=["rev"], atol=2e-2, rtol=2e-2)


def test_vmap_folds_into_batch_and_maps_weights(platform, rng):
    x, kernel, b = random_depthwise(rng, 2, 9, 8, 12, 3, jnp.float32, lead=(3,))
    f = lambda x, k, b: jax_fcm.depthwise(x, k, b, activation="relu")  # noqa: E731
    out = run_on(platform, jax.vmap(f, in_axes=(0, None, None)), x, kernel, b)
    ref = f32_reference((x, kernel, b), activation="relu")
    assert max_normalized_error(out, ref) <= TOLERANCES["float32"]
    kernels = jnp.stack([kernel, 2 * kernel, -kernel])
    out = run_on(platform, jax.vmap(f, in_axes=(0, 0, None)), x, kernels, b)
    for i in range(3):
        ref = f32_reference((x[i], kernels[i], b), activation="relu")
        assert max_normalized_error(out[i], ref) <= TOLERANCES["float32"]


def test_batch_sharding_and_shard_map(mesh, rng):
    x, kernel, b = random_depthwise(rng, 8, 9, 9, 16, 3, jnp.float32)
    ref = f32_reference((x, kernel, b), strides=2)
    xs = jax.device_put(x, NamedSharding(mesh, P("batch")))
    jitted = jax.jit(lambda *a: jax_fcm.depthwise(*a, strides=2))
    out = jitted(xs, kernel, b)
    assert out.sharding.spec[0] == "batch"
    assert "all-gather" not in jitted.lower(xs, kernel, b).compile().as_text()
    assert max_normalized_error(out, ref) <= TOLERANCES["float32"]
    mapped = jax.shard_map(lambda *a: jax_fcm.depthwise(*a, strides=2), mesh=mesh, in_specs=(P("batch"), P(), P()),
                           out_specs=P("batch"))
    assert max_normalized_error(jax.jit(mapped)(xs, kernel, b), ref) <= TOLERANCES["float32"]


def valid_call():
    return dict(x=jnp.ones((1, 8, 8, 16)), kernel=jnp.ones((3, 3, 1, 16)))


# One change to a valid call (x (1, 8, 8, 16) float32, kernel (3, 3, 1, 16))
# -> the error and its message; docs/errors.md lists them
# (tests/test_dw_pw_errors.py writes it).
BAD_INPUTS = [
    (dict(x=jnp.ones((8, 8, 16))), ValueError, "rank >= 4"),
    (dict(x=jnp.ones((1, 8, 8, 16), jnp.int32)), TypeError, "x must have dtype"),
    (dict(x=jnp.ones((1, 8, 8, 16), jnp.bfloat16)), TypeError, "kernel has dtype float32 but x has bfloat16"),
    (dict(x=jnp.ones((1, 8, 8, 0)), kernel=jnp.ones((3, 3, 1, 0))), ValueError, "at least one channel"),
    (dict(kernel=[[1.0]]), TypeError, "kernel must be an array"),
    (dict(kernel=jnp.ones((3, 3, 1, 8))), ValueError, r"kernel must have shape \(k, k, 1, C\) = \(3, 3, 1, 16\)"),
    (dict(kernel=jnp.ones((3, 3, 16, 16))), ValueError, "kernel must have shape"),
    (dict(kernel=jnp.ones((1, 1, 1, 16))), ValueError, "kernel size k must be one of"),
    (dict(bias=jnp.ones((8,))), ValueError, r"bias must have shape \(C,\)"),
    (dict(bias=jnp.ones((16,), jnp.float16)), TypeError, "bias has dtype float16"),
    (dict(strides=3), ValueError, "strides must be 1 or 2"),
    (dict(strides=(2, 1)), ValueError, "strides must be 1 or 2"),
    (dict(padding="FULL"), ValueError, "padding must be 'SAME', 'VALID'"),
    (dict(padding=-1), ValueError, "padding must be non-negative"),
    (dict(x=jnp.ones((1, 2, 2, 16)), padding="VALID"), ValueError, "leaves no output pixels"),
    (dict(activation="tanh"), ValueError, "activation must be None or one of"),
    (dict(precision="ultra"), ValueError, "precision must be"),
    (dict(implementation="fused"), ValueError, "implementation must be one of"),
]


def call_with(change):
    return jax_fcm.depthwise(**{**valid_call(), **change})


@pytest.mark.parametrize("change,error,match", BAD_INPUTS)
def test_bad_input(change, error, match):
    with pytest.raises(error, match=match):
        call_with(change)


def test_direct_ffi_call_with_bad_shapes_is_an_error(platform, rng):
    x, kernel, b = random_depthwise(rng, 1, 8, 8, 16, 3, jnp.float32)
    attrs = dict(stride=np.int64(1), pad_top=np.int64(1), pad_bottom=np.int64(1), pad_left=np.int64(1),
                 pad_right=np.int64(1), activation=np.int64(2))
    good = jax.ShapeDtypeStruct((1, 8, 8, 16), jnp.float32)

    check_ffi_rejects(platform, "jax_fcm_depthwise", attrs, (good, (x, kernel, b)), [
        (jax.ShapeDtypeStruct((1, 7, 8, 16), jnp.float32), (x, kernel, b), {}, "result must be"),
        (good, (x, kernel, b), dict(stride=np.int64(3)), "stride must be 1 or 2"),
        (good, (x, kernel, b), dict(activation=np.int64(99)), "unknown activation"),
        (good, (x, kernel, b), dict(pad_left=np.int64(-1)), "padding must be >= 0"),
        (good, (x, x, b), {}, "kernel size must be 3, 5 or 7"),
        (good, (x, kernel[:, :, :, :8], b), {}, r"kernel must be \(k, k, 1, C=16\)"),
        (good, (x, kernel, kernel), {}, "bias must be"),
        (good, (x, kernel.astype(jnp.bfloat16), b), {}, "must share x's dtype"),
        (good, (x[0], kernel, b), {}, "x must be NHWC"),
    ])
