"""jax_fcm.conv2d (dense kh x kw conv + bias + activation) against a float32
lax reference: every dtype and activation, the zoo's stems and full convs,
odd shapes (outputs not a multiple of the 128-pixel tile, channel counts not
a multiple of 8 or 32, N = 1 and 3), strides, rectangular kernels and every
padding form, both gather paths (vector copies; element-wise for Cin not a
multiple of the vector), the channel splits of small outputs; on the CPU
handler and the CUDA kernel; grads, vmap, sharding, errors, the plan."""

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
H100_SMS = 132

# Max-normalized error against a float32 HIGHEST reference from the same
# rounded inputs. Products are exact in fp32 and sums are fp32 (in another
# order), so 16-bit results are off by half an ulp of the output (2**-9
# bf16, 2**-11 fp16) plus summation noise; float32 on the GPU at default
# precision multiplies on TF32 tensor cores (operands rounded to 10 mantissa
# bits), at "highest" and on the CPU it is full fp32 (windows up to 2880 long:
# 5e-6 for the summation order).
TOLERANCES = {"float32": 5e-6, "tf32": 2e-3, "bfloat16": 4e-3, "float16": 1e-3}


def tolerance(dtype, platform, precision=None):
    name = jnp.dtype(dtype).name
    if name == "float32" and platform == "gpu" and precision not in ("highest", "high"):
        return TOLERANCES["tf32"]
    return TOLERANCES[name]


def random_conv(rng, n, h, w, cin, cout, kh, kw, dtype, lead=()):
    """x, kernel, bias with unit-scale outputs."""
    arr = array_maker(rng, dtype)
    fan_in = kh * kw * cin
    return arr(tuple(lead) + (n, h, w, cin)), arr((kh, kw, cin, cout), 1.0 / np.sqrt(fan_in)), arr((cout,), 0.5)


def check(platform, rng, *, n=3, h=9, w=11, cin=8, cout=24, window=(3, 3), dtype=jnp.float32, lead=(), bias=True,
          **kw):
    x, kernel, b = random_conv(rng, n, h, w, cin, cout, *window, dtype, lead)
    args = (x, kernel, b if bias else None)
    out = run_on(platform, lambda *a: jax_fcm.conv2d(*a, **{"implementation": "kernel", **kw}), *args)
    ref = xla_reference(jax_fcm.conv2d, args, **kw)
    assert out.dtype == jnp.dtype(dtype)
    assert out.shape == ref.shape
    err = max_normalized_error(out, ref)
    tol = tolerance(dtype, platform, kw.get("precision"))
    assert err <= tol, f"max-normalized error {err:.3g} > {tol}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("act", jax_fcm.ACTIVATION_NAMES)
def test_activations(platform, rng, dtype, act):
    check(platform, rng, dtype=dtype, activation=act)


# (n, h, w, cin, cout, kh, kw, strides, padding): the zoo's dense layers
# (smaller N on the CPU's side is the same code) and odd shapes.
LAYERS = [
    (3, 32, 32, 3, 32, 3, 3, 2, "SAME"),       # MobileNetV2 / EfficientNet stem: Cin = 3, element-wise gathers
    (1, 37, 29, 3, 16, 3, 3, 2, "SAME"),       # MobileViT stem, odd sizes: padding after only
    (3, 32, 32, 3, 96, 4, 4, 4, "VALID"),      # ConvNeXt patchify stem: 48 window elements in two chunks
    (1, 14, 14, 96, 96, 3, 3, 1, "SAME"),      # MobileViT local conv: vector gathers, chunks straddle taps
    (3, 7, 7, 320, 160, 3, 3, 1, "SAME"),      # MobileViT fusion conv at 7x7: 2880-long windows
    (3, 28, 28, 96, 192, 2, 2, 2, "VALID"),    # ConvNeXt downsampling
    (1, 5, 5, 24, 8, 5, 5, 1, 2),              # every window clipped by padding, symmetric int padding
    (3, 13, 17, 17, 33, 3, 5, (1, 2), ((2, 0), (1, 3))),  # rectangular window, unequal strides, explicit pads
    (1, 1, 1, 1, 1, 1, 1, 1, "VALID"),         # one pixel, one channel
    (3, 10, 12, 40, 72, 1, 1, 1, "VALID"),     # a 1x1 conv (the pointwise GEMM through the window gathers)
    (1, 8, 8, 16, 8, 3, 3, 3, ((4, 4), (0, 5))),  # padding wider than the window: all-padding windows
]


@pytest.mark.parametrize("n,h,w,cin,cout,kh,kw,strides,padding", LAYERS, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_layers_and_odd_shapes(platform, rng, n, h, w, cin, cout, kh, kw, strides, padding, dtype):
    check(platform, rng, n=n, h=h, w=w, cin=cin, cout=cout, window=(kh, kw), dtype=dtype, strides=strides,
          padding=padding, activation="silu")


# The launch layouts on the GPU: 128-row tiles with many blocks (large N),
# 64-channel chunks (16-bit, K >= 128), channel splits of small outputs.
@pytest.mark.gpu
@pytest.mark.parametrize("n,h,w,cin,cout,kh,kw,strides", [
    (16, 112, 112, 3, 32, 3, 3, 2),    # a stem at batch 16: 3136 tiles of 128 rows
    (9, 56, 56, 3, 96, 4, 4, 4),       # patchify with 128-wide channel tiles
    (8, 28, 28, 96, 96, 3, 3, 1),      # K = 864 in 64-channel chunks (16-bit)
    (1, 7, 7, 160, 160, 3, 3, 1),      # 49 pixels: a channel split
], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_gpu_launch_layouts(rng, n, h, w, cin, cout, kh, kw, strides, dtype):
    check("gpu", rng, n=n, h=h, w=w, cin=cin, cout=cout, window=(kh, kw), dtype=dtype, strides=strides,
          padding="SAME", activation="relu6")


@pytest.mark.parametrize("cin", [3, 96], ids=lambda c: f"cin{c}")
def test_float32_highest_precision(platform, rng, cin):
    check(platform, rng, n=2, h=15, w=15, cin=cin, cout=40, strides=2, precision="highest", activation="silu")


def test_without_bias_and_extra_leading_axes(platform, rng):
    check(platform, rng, bias=False, lead=(2,), n=1, dtype=jnp.bfloat16)


def test_lowering_names_the_ffi_target(rng):
    x, kernel, b = random_conv(rng, 1, 8, 8, 3, 8, 3, 3, jnp.float32)
    text = jax.jit(lambda *a: jax_fcm.conv2d(*a, implementation="kernel")).lower(x, kernel, b).as_text()
    assert "jax_fcm_conv2d" in text
    xla_text = jax.jit(lambda *a: jax_fcm.conv2d(*a, implementation="xla")).lower(x, kernel, b).as_text()
    assert "jax_fcm_conv2d" not in xla_text


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("act", ["none", "silu"])
def test_grad_matches_reference(platform, rng, dtype, act):
    x, kernel, b = random_conv(rng, 2, 9, 8, 3, 12, 3, 3, dtype)
    cot = jnp.asarray(rng.standard_normal((2, 5, 4, 12)), dtype)

    def loss(impl):
        return lambda *a: jnp.vdot(
            jax_fcm.conv2d(*a, strides=2, activation=act, implementation=impl).astype(jnp.float32),
            cot.astype(jnp.float32))

    grads = run_on(platform, jax.grad(loss(None), argnums=(0, 1, 2)), x, kernel, b)
    f32_ref = run_on("cpu", jax.grad(loss("xla"), argnums=(0, 1, 2)),
                     *(jnp.asarray(a, jnp.float32) for a in (x, kernel, b)))
    # No worse than the tolerance or lax's own gradient in the input dtype,
    # whichever is looser (the linear part's gradients are XLA's).
    lax_own = run_on(platform, jax.grad(loss("xla"), argnums=(0, 1, 2)), x, kernel, b)
    tol = {"float32": 1e-5 if platform == "cpu" else 4e-3, "bfloat16": 2e-2}[jnp.dtype(dtype).name]
    for name, g, r, ref in zip(("x", "kernel", "bias"), grads, lax_own, f32_ref):
        assert g.dtype == jnp.dtype(dtype)
        ours, lax_err = max_normalized_error(g, ref), max_normalized_error(r, ref)
        assert ours <= max(tol, 1.25 * lax_err), f"d{name}: {ours:.3g} vs lax {lax_err:.3g}"


def test_check_grads_first_and_second_order(rng):
    x, kernel, b = random_conv(rng, 2, 5, 6, 3, 4, 3, 3, jnp.float32)
    f = lambda *a: jax_fcm.conv2d(*a, strides=2, activation="silu", implementation="kernel")  # noqa: E731
    check_grads(f, (x, kernel, b), order=2, modes=["rev"], atol=2e-2, rtol=2e-2)


def test_vmap_folds_into_batch_and_maps_weights(platform, rng):
    x, kernel, b = random_conv(rng, 2, 7, 6, 5, 12, 3, 3, jnp.float32, lead=(3,))
    f = lambda x, k, b: jax_fcm.conv2d(x, k, b, activation="relu", precision="highest",  # noqa: E731
                                       implementation="kernel")
    ref = lambda *a: xla_reference(jax_fcm.conv2d, a, activation="relu")  # noqa: E731
    out = run_on(platform, jax.vmap(f, in_axes=(0, None, None)), x, kernel, b)
    assert max_normalized_error(out, ref(x, kernel, b)) <= TOLERANCES["float32"]
    kernels = jnp.stack([kernel, 2 * kernel, -kernel])
    out = run_on(platform, jax.vmap(f, in_axes=(0, 0, None)), x, kernels, b)
    for i in range(3):
        assert max_normalized_error(out[i], ref(x[i], kernels[i], b)) <= TOLERANCES["float32"]


def test_batch_sharding_and_shard_map(mesh, rng):
    x, kernel, b = random_conv(rng, 8, 9, 9, 3, 16, 3, 3, jnp.float32)
    ref = xla_reference(jax_fcm.conv2d, (x, kernel, b), strides=2)
    xs = jax.device_put(x, NamedSharding(mesh, P("batch")))
    jitted = jax.jit(lambda *a: jax_fcm.conv2d(*a, strides=2, implementation="kernel"))
    out = jitted(xs, kernel, b)
    assert out.sharding.spec[0] == "batch"
    assert "all-gather" not in jitted.lower(xs, kernel, b).compile().as_text()
    assert max_normalized_error(out, ref) <= TOLERANCES["float32"]
    mapped = jax.shard_map(lambda *a: jax_fcm.conv2d(*a, strides=2, implementation="kernel"), mesh=mesh, in_specs=(P("batch"), P(), P()),
                           out_specs=P("batch"))
    assert max_normalized_error(jax.jit(mapped)(xs, kernel, b), ref) <= TOLERANCES["float32"]


def test_plan_is_the_pointwise_plan_of_the_implicit_gemm():
    # A stem at N = 64: K = 27 in one 32-wide chunk, 32-channel tiles.
    plan = jax_fcm.conv2d_plan(jnp.bfloat16, 64 * 112 * 112, 3, 3, 3, 32, sm_count=H100_SMS)
    assert plan == dict(tile_m=128, tile_n=32, channel_chunk=32, splits=1, wgmma=False, blocks_per_sm=1)
    # Never the wgmma kernel, even where the pointwise plan would take it.
    assert jax_fcm.conv2d_plan(jnp.bfloat16, 64 * 28 * 28, 3, 3, 96, 96, sm_count=H100_SMS)["wgmma"] is False
    assert jax_fcm.conv2d_plan(jnp.bfloat16, 49, 3, 3, 160, 160, sm_count=H100_SMS)["splits"] == 8


def valid_call():
    return dict(x=jnp.ones((1, 8, 8, 16)), kernel=jnp.ones((3, 3, 16, 8)))


# One change to a valid call (x (1, 8, 8, 16) float32, kernel (3, 3, 16, 8))
# -> the error and its message; docs/errors.md lists them
# (tests/test_dw_pw_errors.py writes it).
BAD_INPUTS = [
    (dict(x=jnp.ones((8, 8, 16))), ValueError, "rank >= 4"),
    (dict(x=jnp.ones((1, 8, 8, 16), jnp.int32)), TypeError, "x must have dtype"),
    (dict(x=jnp.ones((1, 8, 8, 16), jnp.bfloat16)), TypeError, "kernel has dtype float32 but x has bfloat16"),
    (dict(kernel=jnp.ones((3, 3, 8, 8))), ValueError, r"kernel must have shape \(kh, kw, Cin=16, Cout\)"),
    (dict(kernel=jnp.ones((3, 16, 8))), ValueError, r"kernel must have shape \(kh, kw, Cin=16, Cout\)"),
    (dict(kernel=jnp.ones((3, 3, 16, 0))), ValueError, "channel counts must be positive"),
    (dict(kernel=jnp.ones((0, 3, 16, 8))), ValueError, "kernel sizes and channel counts must be positive"),
    (dict(bias=jnp.ones((16,))), ValueError, r"bias must have shape \(Cout,\)"),
    (dict(bias=jnp.ones((8,), jnp.float16)), TypeError, "bias has dtype float16"),
    (dict(strides=0), ValueError, "strides must be >= 1"),
    (dict(strides=(1, 2, 3)), ValueError, "strides must be an int or a pair of ints"),
    (dict(padding="FULL"), ValueError, "padding must be 'SAME', 'VALID' or explicit"),
    (dict(padding=-1), ValueError, "padding must be non-negative"),
    (dict(kernel=jnp.ones((9, 9, 16, 8)), padding="VALID"), ValueError, "leaves no output pixels"),
    (dict(activation="tanh"), ValueError, "activation must be None or one of"),
    (dict(precision="ultra"), ValueError, "precision must be"),
    (dict(implementation="fused"), ValueError, "implementation must be one of"),
    (dict(x=jax.ShapeDtypeStruct((1, 8, 8, 2**12), jnp.float32), kernel=jax.ShapeDtypeStruct((3, 3, 2**12, 2**16),
          jnp.float32), implementation="kernel"), ValueError, "more elements than"),
]


def call_with(change):
    return jax_fcm.conv2d(**{**valid_call(), **change})


@pytest.mark.parametrize("change,error,match", BAD_INPUTS)
def test_bad_input(change, error, match):
    with pytest.raises(error, match=match):
        call_with(change)


def test_default_runs_the_kernel_where_the_planner_picks_it():
    # Stems: the kernel; a full 3x3 conv at N = 64: XLA's (planner.use_conv2d_kernel);
    # beyond the kernel's 32-bit offsets: XLA's, where "kernel" raises.
    def lowered(x_shape, kernel_shape, **kw):
        x, kernel = jax.ShapeDtypeStruct(x_shape, jnp.bfloat16), jax.ShapeDtypeStruct(kernel_shape, jnp.bfloat16)
        return jax.jit(lambda x, k: jax_fcm.conv2d(x, k, **kw)).lower(x, kernel).as_text()

    assert "jax_fcm_conv2d" in lowered((8, 224, 224, 3), (3, 3, 3, 32), strides=2)
    assert "jax_fcm_conv2d" not in lowered((64, 28, 28, 96), (3, 3, 96, 96))
    assert "jax_fcm_conv2d" in lowered((64, 28, 28, 96), (3, 3, 96, 96), implementation="kernel")
    assert "jax_fcm_conv2d" not in lowered((1, 8, 8, 2**12), (3, 3, 2**12, 2**16))


def test_direct_ffi_call_with_bad_shapes_is_an_error(platform, rng):
    x, kernel, b = random_conv(rng, 1, 8, 8, 16, 8, 3, 3, jnp.float32)
    attrs = dict(stride_h=np.int64(1), stride_w=np.int64(1), pad_top=np.int64(1), pad_bottom=np.int64(1),
                 pad_left=np.int64(1), pad_right=np.int64(1), activation=np.int64(2), pw_math=np.int64(0))
    good = jax.ShapeDtypeStruct((1, 8, 8, 8), jnp.float32)

    check_ffi_rejects(platform, "jax_fcm_conv2d", attrs, (good, (x, kernel, b)), [
        (jax.ShapeDtypeStruct((1, 7, 8, 8), jnp.float32), (x, kernel, b), {}, "result must be"),
        (good, (x, kernel, b), dict(activation=np.int64(99)), "unknown activation"),
        (good, (x, kernel, b), dict(pw_math=np.int64(2)), "pw_math must be"),
        (good, (x, kernel, b), dict(stride_w=np.int64(0)), "strides must be >= 1"),
        (good, (x, kernel, b), dict(pad_left=np.int64(-1)), "padding must be >= 0"),
        (jax.ShapeDtypeStruct((1, 1, 1, 8), jnp.float32), (x[:, :2, :2], kernel, b), dict(pad_top=np.int64(0),
         pad_bottom=np.int64(0), pad_left=np.int64(0), pad_right=np.int64(0)), "smaller than the kernel"),
        (good, (x, kernel[:, :, :8], b), {}, r"kernel must be \(kh, kw, Cin=16, Cout\)"),
        (good, (x, kernel[0], b), {}, r"kernel must be \(kh, kw, Cin, Cout\)"),
        (good, (x, kernel, x), {}, "bias must be"),
        (good, (x, kernel.astype(jnp.bfloat16), b), {}, "must share x's dtype"),
        (good, (x[0], kernel, b), {}, "x must be NHWC"),
    ])
