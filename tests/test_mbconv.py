"""mbconv (fused inverted residual) against a float32 lax reference: every
dtype, kernel size, stride, padding form, activation, projection tile and odd
shapes, on the CPU handler and the CUDA kernel; grads, vmap, sharding, errors."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TOLERANCES, array_maker, assert_matches, max_normalized_error, run_on, tolerance_key, xla_reference
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

import jax_fcm
from jax_fcm import mbconv_config

DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]
PADDINGS = ["SAME", "VALID", ((1, 2), (2, 1)), 1]


def random_block(rng, n, h, w, cin, cmid, cout, k, dtype, lead=()):
    """x, expand, dw, project kernels and their biases, with unit-scale values throughout."""

    arr = array_maker(rng, dtype)
    return (arr(tuple(lead) + (n, h, w, cin)), arr((1, 1, cin, cmid), 1.0 / np.sqrt(cin)), arr((k, k, 1, cmid), 1.0 / k),
            arr((1, 1, cmid, cout), 1.0 / np.sqrt(cmid)), arr((cmid,), 0.5), arr((cmid,), 0.5), arr((cout,), 0.5))


def call(args, **kw):
    x, we, wd, wp, be, bd, bp = args
    return jax_fcm.mbconv(x, we, wd, wp, be, bd, bp, **kw)


def f32_reference(args, **kw):
    return xla_reference(jax_fcm.mbconv, args, **kw)


def check(platform, rng, *, n=3, h=13, w=7, cin=12, cmid=40, cout=12, k=3, dtype=jnp.float32, lead=(), **kw):
    args = random_block(rng, n, h, w, cin, cmid, cout, k, dtype, lead)
    out = run_on(platform, lambda *a: call(a, **kw), *args)
    assert out.dtype == jnp.dtype(dtype)
    assert_matches(out, f32_reference(args, **kw), tolerance_key(dtype, platform, kw.get("precision")))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", PADDINGS, ids=str)
def test_kernel_stride_padding(platform, rng, dtype, k, stride, padding):
    residual = stride == 1 and padding == "SAME"
    check(platform, rng, k=k, dtype=dtype, strides=stride, padding=padding, residual=residual)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("act", jax_fcm.ACTIVATION_NAMES)
def test_activations(platform, rng, dtype, act):
    check(platform, rng, dtype=dtype, activation=act)


@pytest.mark.parametrize(
    "n,h,w,cin,cmid,cout",
    [
        (1, 1, 1, 1, 1, 1),
        (1, 9, 17, 3, 18, 3),      # Cin not a multiple of the 16-byte vector
        (3, 13, 1, 16, 96, 24),
        (1, 7, 13, 37, 70, 37),    # Cmid spans 3 chunks, the last partial
        (3, 8, 8, 24, 144, 24),    # MobileNetV2-like, an exact tile
        (1, 17, 10, 40, 100, 200),  # several projection tiles per pixel tile
        (3, 5, 6, 65, 33, 9),      # Cin over 4 GEMM steps, the last partial
    ],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("stride", [1, 2])
def test_odd_shapes(platform, rng, n, h, w, cin, cmid, cout, dtype, stride):
    check(platform, rng, n=n, h=h, w=w, cin=cin, cmid=cmid, cout=cout, dtype=dtype, strides=stride,
          residual=stride == 1 and cin == cout, activation="hard_swish")


@pytest.mark.parametrize("tile_n", mbconv_config.TILE_N_CHOICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_every_tile_n(platform, rng, tile_n, dtype):
    # Cout = 100: a partial last tile for every tile_n; 1-4 tiles per pixel tile.
    check(platform, rng, n=2, h=11, w=9, cin=20, cmid=64, cout=100, dtype=dtype, k=5,
          config=jax_fcm.MbconvConfig(tile_n=tile_n), activation="silu", residual=False)


def test_default_splits():
    # Two blocks per tile below 1.5 blocks per SM (64 images of 7x7: one tile
    # each; 320 output channels: two projection tiles); none from 256 on; up
    # to 8 to reach 64 blocks at small batches; never more than the chunks.
    choose = mbconv_config.choose_config
    assert choose(64, 7, 7, 960, 160, 132).channel_splits == 2
    assert choose(64, 7, 7, 960, 320, 132).channel_splits == 2
    assert choose(64, 14, 14, 576, 96, 132).channel_splits == 1
    assert choose(64, 56, 56, 144, 24, 132).channel_splits == 1
    assert choose(8, 7, 7, 960, 160, 132).channel_splits == 8
    assert choose(8, 14, 14, 576, 96, 132).channel_splits == 2
    assert choose(1, 7, 7, 960, 160, 132).channel_splits == 8
    assert choose(1, 7, 7, 96, 16, 132).channel_splits == 2  # 3 chunks
    assert choose(1, 7, 7, 32, 16, 132).channel_splits == 1


@pytest.mark.parametrize("splits", [2, 4, 8])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_channel_splits(platform, rng, splits, dtype):
    # Cmid = 200: 7 chunks, so 8 splits fall back to none (and 4 give uneven slices).
    check(platform, rng, n=2, h=9, w=10, cin=24, cmid=200, cout=24, dtype=dtype, residual=True,
          config=jax_fcm.MbconvConfig(tile_n=32, channel_splits=splits))
    check(platform, rng, n=1, h=7, w=7, cin=40, cmid=130, cout=136, dtype=dtype, strides=2, residual=False,
          config=jax_fcm.MbconvConfig(tile_n=64, channel_splits=splits))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
def test_full_precision(platform, rng, dtype):
    # float32 HIGHEST: both 1x1 convolutions in fp32 FFMA (tolerance "float32").
    check(platform, rng, cin=24, cmid=72, cout=24, dtype=dtype, precision="highest", residual=True)


@pytest.mark.parametrize("residual", [True, False])
def test_expansion_factor_one(platform, rng, residual):
    x, _, wd, wp, _, bd, bp = random_block(rng, 2, 9, 9, 24, 24, 24, 3, jnp.float32)
    out = run_on(platform, lambda *a: jax_fcm.mbconv(a[0], None, *a[1:], residual=residual), x, wd, wp, None, bd, bp)
    ref = f32_reference((x, None, wd, wp, None, bd, bp), residual=residual)
    assert_matches(out, ref, tolerance_key(jnp.float32, platform))


def test_default_config_covers_cout():
    for cout in (1, 16, 24, 32, 40, 96, 112, 160, 192, 320, 1000):
        cfg = mbconv_config.choose_config(64, 56, 56, 144, cout, 132)
        tiles = -(-cout // cfg.tile_n)
        assert tiles == -(-cout // 160) and cfg.tile_n * tiles >= cout
        assert cfg.tile_n == min(t for t in mbconv_config.TILE_N_CHOICES if t * tiles >= cout)


@pytest.mark.parametrize(
    "tile_n,k,stride,cin,itemsize,expected",
    [
        # By hand: x window 112 rows x (24 + ones channel -> 32, + 8) x 2 B =
        # 8960; expanded window 100 x (32 + 16 pad) x 2 = 9600; 2 x (taps 640
        # + expansion 32 x 40 x 2 + projection 33 x 40 x 2); A tile 64 x 40 x 2;
        # scratch 10240.
        (32, 3, 1, 24, 2, 45600),
        # From make_smem_plan (cuda_src/mbconv_traits.cuh) compiled on the host:
        (96, 5, 2, 37, 4, 191680),
        (160, 7, 2, 160, 2, 272240),
        # Channel splits: the partial tile (64 x 36 x 4 B) fits over the x
        # window and the expanded chunk, or (64 x 164 x 4) comes on top.
        ((32, 2), 3, 1, 24, 2, 45600),
        ((160, 4), 3, 1, 24, 2, 104480),
    ],
)
def test_smem_bytes_match_the_kernel_plan(tile_n, k, stride, cin, itemsize, expected):
    tile_n, splits = tile_n if isinstance(tile_n, tuple) else (tile_n, 1)
    cfg = jax_fcm.MbconvConfig(tile_n=tile_n, channel_splits=splits)
    assert mbconv_config.smem_bytes(cfg, k=k, stride=stride, cin=cin, itemsize=itemsize) == expected


def test_lowering_names_the_ffi_target(rng):
    args = random_block(rng, 1, 8, 8, 16, 32, 16, 3, jnp.float32)
    for platform in ("cpu", "cuda"):
        text = jax.jit(lambda *a: call(a)).trace(*args).lower(lowering_platforms=(platform,)).as_text()
        assert "jax_fcm_mbconv" in text
    assert "jax_fcm_mbconv" not in jax.jit(lambda *a: call(a, implementation="xla")).lower(*args).as_text()


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("stride,residual", [(1, True), (2, False)])
def test_grad_matches_reference(platform, rng, dtype, stride, residual):
    args = random_block(rng, 2, 9, 11, 12, 36, 12, 3, dtype)
    kw = dict(strides=stride, residual=residual, activation="silu")

    def loss(impl):
        return lambda *a: jnp.sum(call(a, implementation=impl, precision="highest", **kw).astype(jnp.float32) ** 2)

    argnums = tuple(range(7))
    grads = run_on(platform, jax.grad(loss(None), argnums=argnums), *args)
    ref = run_on(platform, jax.grad(loss("xla"), argnums=argnums), *args)  # same backward, same dtype
    f32_ref = run_on("cpu", jax.grad(loss("xla"), argnums=argnums), *[a.astype(jnp.float32) for a in args])
    for g, r, r32 in zip(grads, ref, f32_ref):
        assert g.dtype == jnp.dtype(dtype)
        # The backward is the reference's, from the same inputs: only the
        # forward output (the cotangent of sum(y**2)) differs, so it is about
        # as far from float32 as lax's own. bf16 bias gradients are bf16
        # reductions: 2x the forward tolerance.
        ours, lax_err = max_normalized_error(g, r32), max_normalized_error(r, r32)
        floor = TOLERANCES["float32"] if dtype == jnp.float32 else 2 * TOLERANCES["bfloat16"]
        assert ours <= max(floor, 1.25 * lax_err)


def test_check_grads_first_and_second_order(rng):
    args = random_block(rng, 1, 6, 5, 4, 8, 4, 3, np.float32)
    f = jax.jit(lambda *a: call(a, activation="silu"))
    with jax.default_device(jax.devices("cpu")[0]):
        args = jax.device_put(args, jax.devices("cpu")[0])
        check_grads(f, args, order=2, modes=["rev"], eps=1e-2, atol=2e-2, rtol=2e-2)


def test_vmap_over_input_folds_into_batch(platform, rng):
    x, *weights = random_block(rng, 2, 7, 9, 10, 24, 10, 5, jnp.float32, lead=(3,))
    f = jax.vmap(lambda x: call((x, *weights)))
    fused = run_on(platform, f, x)
    ref = jax.vmap(lambda x: call((x, *weights), implementation="xla", precision="highest"))(x)
    assert fused.shape == (3, 2, 7, 9, 10)
    assert_matches(fused, ref, tolerance_key(jnp.float32, platform))
    assert jax.jit(f).lower(x).as_text().count("jax_fcm_mbconv") == 1  # one launch, not a loop


def test_vmap_over_weights(platform, rng):
    x, we, wd, wp, be, bd, bp = random_block(rng, 2, 7, 9, 10, 24, 10, 3, jnp.float32)
    wes = jnp.stack([we, 2 * we, -we])
    fused = run_on(platform, jax.vmap(lambda e: call((x, e, wd, wp, be, bd, bp))), wes)
    ref = jnp.stack([call((x, e, wd, wp, be, bd, bp), implementation="xla", precision="highest") for e in wes])
    assert_matches(fused, ref, tolerance_key(jnp.float32, platform))


def test_batch_sharding_and_shard_map(mesh, rng):
    args = random_block(rng, 8, 9, 11, 16, 48, 16, 3, np.float32)
    cpu0 = jax.devices("cpu")[0]
    ref = jax.jit(lambda *a: call(a))(*jax.device_put(args, cpu0))
    x = jax.device_put(args[0], NamedSharding(mesh, P("batch")))
    f = jax.jit(lambda *a: call(a))
    out = f(x, *args[1:])
    assert_matches(out, ref, "float32")
    assert out.sharding.spec[0] == "batch"
    hlo = f.lower(x, *args[1:]).compile().as_text()
    assert "all-gather" not in hlo and "jax_fcm_mbconv" in hlo
    mapped = jax.shard_map(lambda *a: call(a), mesh=mesh, in_specs=(P("batch"),) + (P(),) * 6, out_specs=P("batch"))
    assert_matches(jax.jit(mapped)(*args), ref, "float32")


BLOCK = dict(n=1, h=8, w=8, cin=8, cmid=16, cout=8, k=3, dtype=jnp.float32)


def valid_block():
    x, we, wd, wp, *_ = random_block(np.random.default_rng(0), **BLOCK)
    return dict(x=x, expand_kernel=we, dw_kernel=wd, project_kernel=wp)


# One change to a valid call (valid_block: x (1, 8, 8, 8) float32, Cmid 16,
# Cout 8) -> the error and its message; docs/errors.md lists them
# (tests/test_dw_pw_errors.py writes it).
BAD_INPUTS = [
    (dict(x=jnp.ones((8, 8, 8))), ValueError, "rank >= 4"),
    (dict(x=jnp.ones((1, 8, 8, 8), jnp.int8)), TypeError, "must have dtype"),
    (dict(expand_kernel=jnp.ones((1, 1, 8, 16), jnp.bfloat16)), TypeError, "cast the parameters"),
    (dict(expand_kernel=jnp.ones((1, 1, 4, 16))), ValueError, "expand_kernel must have shape"),
    (dict(expand_kernel=None, expand_bias=jnp.ones((16,))), ValueError, "expand_bias needs an expand_kernel"),
    (dict(dw_kernel=jnp.ones((3, 3, 1, 4))), ValueError, "dw_kernel must have shape"),
    (dict(dw_kernel=jnp.ones((4, 4, 1, 16))), ValueError, "dw_kernel size k"),
    (dict(project_kernel=jnp.ones((1, 1, 8, 8))), ValueError, "project_kernel must have shape"),
    (dict(project_bias=jnp.ones((4,))), ValueError, "project_bias must have shape"),
    (dict(residual=True, strides=2), ValueError, "residual=True needs stride 1"),
    (dict(residual=True, padding="VALID"), ValueError, "output the size of the input"),
    (dict(residual=1), TypeError, "residual must be a bool"),
    (dict(strides=3), ValueError, "strides must be 1 or 2"),
    (dict(activation="tanh"), ValueError, "activation"),
    (dict(config=jax_fcm.DwPwConfig()), TypeError, "MbconvConfig"),
    (dict(expand_kernel=None, dw_kernel=jnp.ones((3, 3, 1, 8)), project_kernel=jnp.ones((1, 1, 8, 8)),
          config=jax_fcm.MbconvConfig()), ValueError, "config applies to the expanding kernel"),
    (dict(implementation="cudnn"), ValueError, "implementation"),
]


def call_with(change):
    return jax_fcm.mbconv(**{**valid_block(), **change})


@pytest.mark.parametrize("change,error,match", BAD_INPUTS)
def test_bad_input(change, error, match):
    with pytest.raises(error, match=match):
        call_with(change)


def test_bad_config_values():
    with pytest.raises(ValueError, match="config tile_n"):
        jax_fcm.MbconvConfig(tile_n=48)
    with pytest.raises(ValueError, match="config channel_splits"):
        jax_fcm.MbconvConfig(channel_splits=3)


def test_direct_ffi_call_with_bad_shapes_is_an_error(rng):
    x, we, wd, wp, be, bd, bp = random_block(rng, **BLOCK)
    attrs = dict(stride=np.int64(1), pad_top=np.int64(1), pad_bottom=np.int64(1), pad_left=np.int64(1),
                 pad_right=np.int64(1), activation=np.int64(2), residual=np.int64(1), pw_math=np.int64(0),
                 tile_n=np.int64(32), channel_splits=np.int64(1))
    good = jax.ShapeDtypeStruct((1, 8, 8, 8), jnp.float32)

    def run(result, *operands, **changes):
        return jax.block_until_ready(jax.ffi.ffi_call("jax_fcm_mbconv", result)(*operands, **{**attrs, **changes}))

    assert run(good, x, we, be, wd, bd, wp, bp).shape == (1, 8, 8, 8)
    with pytest.raises(Exception, match="result must be"):
        run(jax.ShapeDtypeStruct((1, 7, 8, 8), jnp.float32), x, we, be, wd, bd, wp, bp)
    with pytest.raises(Exception, match="stride must be 1 or 2"):
        run(good, x, we, be, wd, bd, wp, bp, stride=np.int64(3))
    with pytest.raises(Exception, match="a residual needs stride 1"):
        run(jax.ShapeDtypeStruct((1, 4, 4, 8), jnp.float32), x, we, be, wd, bd, wp, bp, stride=np.int64(2))
    with pytest.raises(Exception, match="unknown activation"):
        run(good, x, we, be, wd, bd, wp, bp, activation=np.int64(99))
    with pytest.raises(Exception, match="dw_kernel must be"):
        run(good, x, we, be, we, bd, wp, bp)
    with pytest.raises(Exception, match="expand_bias must be"):
        run(good, x, we, bp, wd, bd, wp, bp)
    with pytest.raises(Exception, match="channel_splits must be 1, 2, 4 or 8"):
        run(good, x, we, be, wd, bd, wp, bp, channel_splits=np.int64(3))


@pytest.mark.gpu
def test_shared_memory_limit_matches_the_kernel(rng):
    # The largest Cin whose block fits runs (the Python estimate is not below
    # the kernel's need); with 16 more channels "fused" raises before any
    # launch and the default takes the XLA path.
    from jax_fcm import gpu

    limit = gpu.detect("gpu").smem_per_block
    need = functools.partial(mbconv_config.smem_bytes, jax_fcm.MbconvConfig(tile_n=32), k=3, stride=2, itemsize=4)
    cin = max(c for c in range(16, 4096, 16) if need(cin=c) <= limit)
    check("gpu", rng, n=1, h=9, w=9, cin=cin, cmid=32, cout=32, strides=2, residual=False,
          config=jax_fcm.MbconvConfig(tile_n=32))
    big = random_block(rng, 1, 9, 9, cin + 16, 32, 32, 3, jnp.float32)
    kw = dict(strides=2, residual=False, config=jax_fcm.MbconvConfig(tile_n=32))
    with pytest.raises(ValueError, match="bytes of shared memory per block"):
        call(big, implementation="fused", **kw)
    assert "jax_fcm_mbconv" not in jax.jit(lambda *a: call(a, **kw)).lower(*big).as_text()
    assert_matches(call(big, **kw), f32_reference(big, **kw), "tf32")
