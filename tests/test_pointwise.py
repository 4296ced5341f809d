"""jax_fcm.pointwise (standalone 1x1 conv + bias + activation) against a
float32 lax reference: every dtype, activation, precision and odd shapes
(pixel counts not a multiple of the 128-pixel tile, channel counts not a
multiple of 8 or 32), the launch layouts the CUDA kernel picks (channel tiles,
64-channel chunks, cluster channel splits), on the CPU handler and the CUDA
kernel; grads, vmap, sharding, errors, the launch plan."""

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
from jax_fcm import gpu, planner

DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]
H100_SMS = 132

# Max-normalized error (conftest.max_normalized_error) against a float32
# HIGHEST reference from the same rounded inputs. Products are exact in fp32
# and sums are fp32, so 16-bit results are off by at most half an ulp of the
# output (2**-9 bf16, 2**-11 fp16) plus summation-order noise. float32 on
# the GPU at default precision multiplies on TF32 tensor cores (both operands
# rounded to 10 mantissa bits: ~2**-11 relative per product, averaging out
# over Cin terms); at "highest" and on the CPU it is full fp32.
TOLERANCES = {"float32": 2e-6, "tf32": 2e-3, "bfloat16": 4e-3, "float16": 1e-3}


def tolerance(dtype, platform, precision=None):
    name = jnp.dtype(dtype).name
    if name == "float32" and platform == "gpu" and precision not in ("highest", "high"):
        return TOLERANCES["tf32"]
    return TOLERANCES[name]


def random_pointwise(rng, n, h, w, cin, cout, dtype, lead=()):
    """x, kernel, bias with unit-scale outputs."""
    arr = array_maker(rng, dtype)
    return arr(tuple(lead) + (n, h, w, cin)), arr((1, 1, cin, cout), 1.0 / np.sqrt(cin)), arr((cout,), 0.5)


def f32_reference(args, **kw):
    return xla_reference(jax_fcm.pointwise, args, **kw)


def check(platform, rng, *, n=3, h=5, w=7, cin=24, cout=40, dtype=jnp.float32, lead=(), bias=True, **kw):
    x, kernel, b = random_pointwise(rng, n, h, w, cin, cout, dtype, lead)
    args = (x, kernel, b if bias else None)
    out = run_on(platform, lambda *a: jax_fcm.pointwise(*a, **{"implementation": "kernel", **kw}), *args)
    assert out.dtype == jnp.dtype(dtype)
    assert out.shape == tuple(lead) + (n, h, w, cout)
    err = max_normalized_error(out, f32_reference(args, **kw))
    tol = tolerance(dtype, platform, kw.get("precision"))
    assert err <= tol, f"max-normalized error {err:.3g} > {tol}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("act", jax_fcm.ACTIVATION_NAMES)
def test_activations(platform, rng, dtype, act):
    check(platform, rng, dtype=dtype, activation=act)


# The launch layouts of the H100's plan (test_plan pins which is which):
# 64- and 128-row tiles, channel tiles 32/64/128, 64-channel chunks,
# channel splits of 2-8.
LAYOUT_SHAPES = [
    (1, 1, 1, 1, 1),          # one pixel, one channel
    (1, 9, 17, 3, 5),         # channels not a multiple of 8: the element-wise copies
    (3, 13, 1, 17, 33),       # M = 39 < one tile; Cout one past a 32 tile
    (1, 7, 7, 960, 320),      # MobileNetV2's last projection at N = 1: 8-way split
    (1, 14, 14, 96, 576),     # split of 2 over 3 chunks (uneven slices)
    (3, 28, 28, 64, 200),     # split of 2; Cout not a multiple of the 128 tile
    (6, 56, 56, 136, 100),    # 128-row tiles, 64-channel chunks at 16 bits, the last one partial
    (17, 7, 7, 128, 1280),    # 64-row tiles with 64-channel chunks at 16 bits (wgmma on Hopper: 2 steps)
    (2, 56, 56, 144, 24),     # a projection at N = 2: tile_n 32, many pixel tiles
    (1, 7, 7, 1280, 1000),    # a classifier-sized GEMM
    # 16-bit on Hopper: the wgmma kernel (test_plan_wgmma pins which).
    (3, 33, 35, 200, 328),    # 128-column tiles; M, Cin and Cout all end in partial tiles
    (64, 7, 7, 960, 320),     # 64-column tiles; 15 steps through the 6-slot ring
    (5, 45, 45, 1000, 64),    # 16 steps, the last 40 channels wide; 13 rows in the last tile
    (9, 40, 40, 448, 136),    # two blocks per SM (339 blocks of 64 channels, the last 8 wide)
]


@pytest.mark.parametrize("n,h,w,cin,cout", LAYOUT_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_shapes_and_layouts(platform, rng, n, h, w, cin, cout, dtype):
    check(platform, rng, n=n, h=h, w=w, cin=cin, cout=cout, dtype=dtype, activation="relu6")


@pytest.mark.parametrize("n,h,w,cin,cout", [(1, 7, 7, 960, 320), (3, 28, 28, 64, 200), (1, 9, 17, 3, 5)], ids=str)
def test_float32_highest_precision(platform, rng, n, h, w, cin, cout):
    check(platform, rng, n=n, h=h, w=w, cin=cin, cout=cout, precision="highest", activation="silu")


def test_without_bias_and_extra_leading_axes(platform, rng):
    check(platform, rng, bias=False, lead=(2,), n=1, dtype=jnp.bfloat16)


def test_unaligned_operands(platform, rng):
    # Slices of larger arrays inside jit are copies, but XLA may hand the
    # kernel any 16-byte-aligned buffer; odd channel counts make the rows
    # themselves unaligned (the element-wise paths), checked here end to end.
    check(platform, rng, n=2, h=3, w=5, cin=13, cout=7, dtype=jnp.float16, activation="gelu_tanh")


def test_lowering_names_the_ffi_target(rng):
    x, kernel, b = random_pointwise(rng, 1, 8, 8, 16, 8, jnp.float32)
    text = jax.jit(lambda *a: jax_fcm.pointwise(*a, implementation="kernel")).lower(x, kernel, b).as_text()
    assert "jax_fcm_pointwise" in text
    xla_text = jax.jit(lambda *a: jax_fcm.pointwise(*a, implementation="xla")).lower(x, kernel, b).as_text()
    assert "jax_fcm_pointwise" not in xla_text


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("act", ["none", "gelu_tanh", "silu"])
def test_grad_matches_reference(platform, rng, dtype, act):
    x, kernel, b = random_pointwise(rng, 3, 5, 6, 20, 12, dtype)
    cot = jnp.asarray(rng.standard_normal((3, 5, 6, 12)), dtype)

    def loss(impl):
        return lambda *a: jnp.vdot(jax_fcm.pointwise(*a, activation=act, implementation=impl).astype(jnp.float32),
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
    x, kernel, b = random_pointwise(rng, 2, 3, 4, 5, 6, jnp.float32)
    f = lambda *a: jax_fcm.pointwise(*a, activation="silu", implementation="kernel")  # noqa: E731
    check_grads(f, (x, kernel, b), order=2, modes=["rev"], atol=2e-2, rtol=2e-2)


def test_vmap_folds_into_batch_and_maps_weights(platform, rng):
    x, kernel, b = random_pointwise(rng, 2, 5, 4, 12, 20, jnp.float32, lead=(3,))
    f = lambda x, k, b: jax_fcm.pointwise(x, k, b, activation="relu", precision="highest",  # noqa: E731
                                          implementation="kernel")
    out = run_on(platform, jax.vmap(f, in_axes=(0, None, None)), x, kernel, b)
    assert max_normalized_error(out, f32_reference((x, kernel, b), activation="relu")) <= TOLERANCES["float32"]
    kernels = jnp.stack([kernel, 2 * kernel, -kernel])
    out = run_on(platform, jax.vmap(f, in_axes=(0, 0, None)), x, kernels, b)
    for i in range(3):
        ref = f32_reference((x[i], kernels[i], b), activation="relu")
        assert max_normalized_error(out[i], ref) <= TOLERANCES["float32"]


def test_batch_sharding_and_shard_map(mesh, rng):
    x, kernel, b = random_pointwise(rng, 8, 5, 5, 16, 24, jnp.float32)
    ref = f32_reference((x, kernel, b))
    xs = jax.device_put(x, NamedSharding(mesh, P("batch")))
    jitted = jax.jit(lambda *a: jax_fcm.pointwise(*a, implementation="kernel"))
    out = jitted(xs, kernel, b)
    assert out.sharding.spec[0] == "batch"
    assert "all-gather" not in jitted.lower(xs, kernel, b).compile().as_text()
    assert max_normalized_error(out, ref) <= TOLERANCES["float32"]
    mapped = jax.shard_map(lambda *a: jax_fcm.pointwise(*a, implementation="kernel"), mesh=mesh, in_specs=(P("batch"), P(), P()),
                           out_specs=P("batch"))
    assert max_normalized_error(jax.jit(mapped)(xs, kernel, b), ref) <= TOLERANCES["float32"]


@pytest.mark.parametrize("dtype,m,cin,cout,plan", [
    # Enough 128-row blocks for a wave: the channel tile with the fewest
    # padded columns, 64-channel chunks for 16-bit types from 128 input
    # channels, no split.
    (jnp.bfloat16, 64 * 56 * 56, 144, 24, dict(tile_m=128, tile_n=32, channel_chunk=32, splits=1)),
    (jnp.bfloat16, 6 * 56 * 56, 136, 100, dict(tile_m=128, tile_n=128, channel_chunk=64, splits=1)),
    (jnp.bfloat16, 64 * 56 * 56, 24, 144, dict(tile_m=128, tile_n=64, channel_chunk=32, splits=1)),
    # Fewer: 64-row blocks, then a channel split if that is still not a wave.
    (jnp.bfloat16, 64 * 7 * 7, 960, 320, dict(tile_m=64, tile_n=128, channel_chunk=64, splits=1)),
    (jnp.float32, 64 * 7 * 7, 960, 320, dict(tile_m=64, tile_n=128, channel_chunk=32, splits=1)),
    (jnp.float16, 3 * 28 * 28, 64, 200, dict(tile_m=64, tile_n=128, channel_chunk=32, splits=2)),
    # Few pixels: narrower channel tiles, then the widest split.
    (jnp.bfloat16, 7 * 7, 960, 320, dict(tile_m=64, tile_n=32, channel_chunk=32, splits=8)),
    (jnp.bfloat16, 14 * 14, 96, 576, dict(tile_m=64, tile_n=128, channel_chunk=32, splits=2)),
])
def test_plan(dtype, m, cin, cout, plan):
    assert jax_fcm.pointwise_plan(dtype, m, cin, cout, sm_count=H100_SMS) == {**plan, "wgmma": False,
                                                                               "blocks_per_sm": 1}


WGMMA_PLAN = dict(tile_m=128, channel_chunk=64, splits=1, wgmma=True)


@pytest.mark.parametrize("dtype,m,cin,cout,tile_n,per_sm", [
    # 16-bit, Cin >= 128, Cin and Cout multiples of 8, Cout >= 64, and at
    # least half a wave of 128-row blocks: the wgmma kernel, with the channel
    # tile that pads fewer columns (128 on a tie), two blocks per SM when
    # there are more than one wave's worth.
    (jnp.bfloat16, 64 * 7 * 7, 960, 320, 64, 1),
    (jnp.float16, 64 * 14 * 14, 576, 96, 128, 1),
    (jnp.bfloat16, 3 * 33 * 35, 200, 328, 128, 1),
    (jnp.bfloat16, 17 * 7 * 7, 128, 1280, 128, 1),
    (jnp.bfloat16, 64 * 7 * 7, 3072, 768, 128, 2),
    (jnp.bfloat16, 64 * 56 * 56, 384, 96, 128, 2),
    # Otherwise the mma.sync kernel's plan.
    (jnp.bfloat16, 8 * 7 * 7, 960, 320, None, 1),     # too few blocks: channel splits instead
    (jnp.float32, 64 * 7 * 7, 960, 320, None, 1),     # float32 (TF32 wgmma needs K-major weights)
    (jnp.bfloat16, 64 * 56 * 56, 144, 24, None, 1),   # Cout < 64 (measured slower)
    (jnp.bfloat16, 64 * 56 * 56, 96, 576, None, 1),   # Cin < 128
    (jnp.bfloat16, 64 * 7 * 7, 962, 320, None, 1),    # Cin not a multiple of 8
])
def test_plan_wgmma(dtype, m, cin, cout, tile_n, per_sm):
    plan = jax_fcm.pointwise_plan(dtype, m, cin, cout, sm_count=H100_SMS, wgmma=True)
    if tile_n is None:
        assert plan == jax_fcm.pointwise_plan(dtype, m, cin, cout, sm_count=H100_SMS)
    else:
        assert plan == {**WGMMA_PLAN, "tile_n": tile_n, "blocks_per_sm": per_sm}


def test_plan_without_clusters_never_splits():
    assert jax_fcm.pointwise_plan(jnp.float32, 49, 960, 320, sm_count=H100_SMS, clusters=False)["splits"] == 1


def valid_call():
    return dict(x=jnp.ones((1, 8, 8, 16)), kernel=jnp.ones((1, 1, 16, 8)))


# One change to a valid call (x (1, 8, 8, 16) float32, kernel (1, 1, 16, 8))
# -> the error and its message; docs/errors.md lists them
# (tests/test_dw_pw_errors.py writes it).
BAD_INPUTS = [
    (dict(x=jnp.ones((8, 8, 16))), ValueError, "rank >= 4"),
    (dict(x=jnp.ones((1, 8, 8, 16), jnp.int32)), TypeError, "x must have dtype"),
    (dict(x=jnp.ones((1, 8, 8, 16), jnp.bfloat16)), TypeError, "kernel has dtype float32 but x has bfloat16"),
    (dict(x=jnp.ones((1, 8, 8, 0)), kernel=jnp.ones((1, 1, 0, 8))), ValueError, "channel counts must be positive"),
    (dict(kernel=jnp.ones((1, 1, 16, 0))), ValueError, "channel counts must be positive"),
    (dict(kernel=[[1.0]]), TypeError, "kernel must be an array"),
    (dict(kernel=jnp.ones((1, 1, 8, 8))), ValueError, r"kernel must have shape \(1, 1, Cin, Cout\)"),
    (dict(kernel=jnp.ones((3, 3, 16, 8))), ValueError, r"kernel must have shape \(1, 1, Cin, Cout\)"),
    (dict(kernel=jnp.ones((16, 8))), ValueError, r"kernel must have shape \(1, 1, Cin, Cout\)"),
    (dict(bias=jnp.ones((16,))), ValueError, r"bias must have shape \(Cout,\)"),
    (dict(bias=jnp.ones((8,), jnp.float16)), TypeError, "bias has dtype float16"),
    (dict(activation="tanh"), ValueError, "activation must be None or one of"),
    (dict(precision="ultra"), ValueError, "precision must be"),
    (dict(implementation="fused"), ValueError, "implementation must be one of"),
    (dict(x=jax.ShapeDtypeStruct((1, 1, 1, 2**16), jnp.float32), kernel=jax.ShapeDtypeStruct((1, 1, 2**16, 2**16),
          jnp.float32), implementation="kernel"), ValueError, "more than the kernel indexes"),
]


def call_with(change):
    return jax_fcm.pointwise(**{**valid_call(), **change})


@pytest.mark.parametrize("change,error,match", BAD_INPUTS)
def test_bad_input(change, error, match):
    with pytest.raises(error, match=match):
        call_with(change)


def test_default_runs_the_kernel_where_the_planner_picks_it():
    # planner.use_pointwise_kernel (the H100 preset without a GPU): a deep
    # bf16 expansion at N = 64 on the kernel, float32 at N = 8 on XLA's; beyond
    # the kernel's 32-bit offsets: XLA's, where "kernel" raises.
    def lowered(x_shape, cout, dtype, **kw):
        x, kernel = jax.ShapeDtypeStruct(x_shape, dtype), jax.ShapeDtypeStruct((1, 1, x_shape[-1], cout), dtype)
        return jax.jit(lambda x, k: jax_fcm.pointwise(x, k, **kw)).lower(x, kernel).as_text()

    deep_bf16, f32_n8 = ((64, 14, 14, 96), 576, jnp.bfloat16), ((8, 14, 14, 576), 96, jnp.float32)
    for shape, cout, dtype in (deep_bf16, f32_n8):
        assert ("jax_fcm_pointwise" in lowered(shape, cout, dtype)) == planner.use_pointwise_kernel(shape, cout, dtype)
        assert "jax_fcm_pointwise" in lowered(shape, cout, dtype, implementation="kernel")
    h100 = gpu.PRESETS["h100"]
    assert planner.use_pointwise_kernel(*deep_bf16, h100) and not planner.use_pointwise_kernel(*f32_n8, h100)
    assert "jax_fcm_pointwise" not in lowered((1, 1, 1, 2**16), 2**16, jnp.float32)


def test_direct_ffi_call_with_bad_shapes_is_an_error(platform, rng):
    x, kernel, b = random_pointwise(rng, 1, 8, 8, 16, 8, jnp.float32)
    attrs = dict(activation=np.int64(2), pw_math=np.int64(0))
    good = jax.ShapeDtypeStruct((1, 8, 8, 8), jnp.float32)

    check_ffi_rejects(platform, "jax_fcm_pointwise", attrs, (good, (x, kernel, b)), [
        (jax.ShapeDtypeStruct((1, 7, 8, 8), jnp.float32), (x, kernel, b), {}, "result must be"),
        (good, (x, kernel, b), dict(activation=np.int64(99)), "unknown activation"),
        (good, (x, kernel, b), dict(pw_math=np.int64(2)), "pw_math must be"),
        (good, (x, kernel[:, :, :8], b), {}, r"kernel must be \(1, 1, Cin=16, Cout\)"),
        (good, (x, kernel[0, 0], b), {}, r"kernel must be \(1, 1, Cin, Cout\)"),
        (good, (x, kernel, x), {}, "bias must be"),
        (good, (x, kernel.astype(jnp.bfloat16), b), {}, "must share x's dtype"),
        (good, (x[0], kernel, b), {}, "x must be NHWC"),
    ])
