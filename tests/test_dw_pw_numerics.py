"""dw_pw against a float32 lax reference: every dtype, kernel size, stride,
padding form, activation and odd shapes, on the CPU handler and the CUDA kernel."""

from __future__ import annotations

import functools

import jax.numpy as jnp
import pytest
from conftest import assert_matches, f32_reference, random_layer, run_on, tolerance_key

import jax_fcm
from jax_fcm.tiling import all_configs

DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]
PADDINGS = ["SAME", "VALID", ((1, 2), (2, 1)), 1]


def check(platform, rng, *, n=3, h=13, w=7, c=17, cout=5, k=3, dtype=jnp.float32, lead=(), bias=True, **kw):
    x, dw, pw, dwb, pwb = random_layer(rng, n, h, w, c, cout, k, dtype, lead)
    if not bias:
        dwb = pwb = None
    fn = functools.partial(jax_fcm.dw_pw, **kw)
    out = run_on(platform, lambda *a: fn(*a), x, dw, pw, dwb, pwb)
    ref = f32_reference(x, dw, pw, dwb, pwb, **kw)
    assert out.dtype == x.dtype
    assert_matches(out, ref, tolerance_key(dtype, platform, kw.get("precision")))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", PADDINGS, ids=str)
def test_kernel_stride_padding(platform, rng, dtype, k, stride, padding):
    check(platform, rng, k=k, dtype=dtype, strides=stride, padding=padding, dw_activation="relu6",
          pw_activation="relu")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("act", jax_fcm.ACTIVATION_NAMES)
def test_activations(platform, rng, dtype, act):
    check(platform, rng, dtype=dtype, dw_activation=act, pw_activation=act)


@pytest.mark.parametrize(
    "n,h,w,c,cout",
    [
        (1, 1, 1, 1, 1),
        (1, 7, 13, 3, 24),
        (3, 13, 1, 96, 5),
        (1, 13, 13, 17, 1),
        (3, 7, 7, 1, 24),
        (1, 1, 13, 96, 24),
        (3, 13, 7, 3, 5),
        (1, 9, 17, 70, 200),  # several channel chunks and output-channel tiles
    ],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("stride", [1, 2])
def test_odd_shapes(platform, rng, n, h, w, c, cout, dtype, stride):
    check(platform, rng, n=n, h=h, w=w, c=c, cout=cout, k=5, dtype=dtype, strides=stride,
          dw_activation="hard_swish", pw_activation="gelu_tanh")


@pytest.mark.parametrize("config", list(all_configs(200, 40)), ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_every_tile_config(platform, rng, config, dtype):
    # 200 output channels: a partial last tile for every tile_n, and blocks
    # that sweep several tiles over one resident depthwise result.
    check(platform, rng, n=2, h=11, w=19, c=40, cout=200, dtype=dtype, config=config, dw_activation="silu")


WIDE_CONFIGS = [cfg for cfg in all_configs(200, 100, itemsize=2) if cfg.channel_chunk == 64]


@pytest.mark.parametrize("config", WIDE_CONFIGS, ids=str)
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("k,stride", [(3, 1), (7, 2)])
def test_every_wide_chunk_config(platform, rng, config, dtype, k, stride):
    # 64-channel chunks: C = 100 is one full chunk and one with 36 channels
    # (a cluster of 2 splits them), 200 output channels a partial last tile.
    check(platform, rng, n=2, h=11, w=19, c=100, cout=200, k=k, strides=stride, dtype=dtype, config=config,
          dw_activation="silu", pw_activation="relu6")


@pytest.mark.parametrize("splits", [2, 4])
@pytest.mark.parametrize("c", [260, 257])
def test_wide_chunk_splits(platform, rng, splits, c):
    # 5 chunks of 64 (the last with 4 or 1 channels: 257 is no multiple of
    # the 16-byte vector, the element-wise staging path) shared by a cluster.
    check(platform, rng, n=3, h=7, w=9, c=c, cout=72, dtype=jnp.bfloat16, dw_activation="relu6",
          pw_activation="silu", config=jax_fcm.DwPwConfig(tile_n=64, channel_splits=splits, channel_chunk=64))


@pytest.mark.parametrize("splits", [2, 4, 8])
@pytest.mark.parametrize("tile_h", [8, 4])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_channel_splits(platform, rng, splits, tile_h, dtype):
    # 9 chunks of 32 channels (the last with 4) shared unevenly by the cluster;
    # 7x9 pixels: partial tiles in both directions.
    check(platform, rng, n=3, h=7, w=9, c=260, cout=72, dtype=dtype, dw_activation="relu6", pw_activation="silu",
          config=jax_fcm.DwPwConfig(tile_h=tile_h, tile_n=64, channel_splits=splits))


@pytest.mark.parametrize("tiles_per_block", [1, 2, 3, 0])
@pytest.mark.parametrize("c,cout,passes", [(17, 24, 1), (32, 64, 1), (40, 200, 4), (100, 72, 1)])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_blocks_walking_several_tiles(platform, rng, tiles_per_block, c, cout, passes, dtype):
    # 3 images of 13x19 pixels = 18 tiles of 8x8: blocks walk 2 or 3 tiles
    # (the last block fewer), with resident taps and weights (one chunk), a
    # ring of A tiles (several chunks) and resident A tiles over 4 passes.
    check(platform, rng, n=3, h=13, w=19, c=c, cout=cout, dtype=dtype, dw_activation="relu",
          pw_activation="hard_swish",
          config=jax_fcm.DwPwConfig(tile_n=64, cout_tiles_per_block=passes, tiles_per_block=tiles_per_block))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
def test_persistent_grid_over_many_tiles(rng, dtype):
    # 1568 tiles of 8x8: more than one wave of resident blocks, so the default
    # grid makes every block walk several tiles.
    check("gpu", rng, n=8, h=112, w=112, c=32, cout=64, dtype=dtype, dw_activation="relu", pw_activation="relu")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_without_bias(platform, rng, dtype):
    check(platform, rng, dtype=dtype, bias=False, pw_activation="relu6")


def test_float32_highest_precision(platform, rng):
    check(platform, rng, c=96, cout=24, dtype=jnp.float32, precision="highest", dw_activation="relu")


def test_float32_highest_precision_with_channel_splits(platform, rng):
    check(platform, rng, c=96, cout=40, dtype=jnp.float32, precision="highest", pw_activation="gelu_exact",
          config=jax_fcm.DwPwConfig(tile_n=64, tile_h=4, channel_splits=2))


def test_extra_leading_axes(platform, rng):
    check(platform, rng, n=2, lead=(3,), dtype=jnp.float32, strides=2)


def test_aligned_vector_path(platform, rng):
    # C and Cout multiples of 8: 16-byte loads and stores in the CUDA kernel.
    for dtype in DTYPES:
        check(platform, rng, n=2, h=16, w=16, c=64, cout=32, dtype=dtype, dw_activation="relu6")
