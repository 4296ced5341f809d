"""pw_dw (fused 1x1 -> depthwise) against a float32 lax reference: every
dtype, kernel size, stride, padding form, activation and odd shapes, on the
CPU handler and the CUDA kernel; the split path, the planner's default,
grads, vmap, sharding, errors."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import (TOLERANCES, array_maker, assert_matches, check_ffi_rejects, max_normalized_error, run_on,
                      tolerance_key, xla_reference)
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

import jax_fcm
from jax_fcm import gpu, mbconv_config, planner

DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]
PADDINGS = ["SAME", "VALID", ((1, 2), (2, 1)), 1]


def random_pair(rng, n, h, w, cin, cmid, k, dtype, lead=()):
    """x, pw_kernel, dw_kernel, pw_bias, dw_bias with unit-scale values throughout."""
    arr = array_maker(rng, dtype)
    return (arr(tuple(lead) + (n, h, w, cin)), arr((1, 1, cin, cmid), 1.0 / np.sqrt(cin)), arr((k, k, 1, cmid), 1.0 / k),
            arr((cmid,), 0.5), arr((cmid,), 0.5))


def call(args, **kw):
    return jax_fcm.pw_dw(*args, **kw)


def f32_reference(args, **kw):
    kw = {key: v for key, v in kw.items() if key != "implementation"}
    return xla_reference(jax_fcm.pw_dw, args, **kw)


def check(platform, rng, *, n=3, h=13, w=7, cin=12, cmid=40, k=3, dtype=jnp.float32, lead=(), implementation="fused",
          **kw):
    args = random_pair(rng, n, h, w, cin, cmid, k, dtype, lead)
    out = run_on(platform, lambda *a: call(a, implementation=implementation, **kw), *args)
    assert out.dtype == jnp.dtype(dtype)
    assert_matches(out, f32_reference(args, **kw), tolerance_key(dtype, platform, kw.get("precision")))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", PADDINGS, ids=str)
def test_kernel_stride_padding(platform, rng, dtype, k, stride, padding):
    check(platform, rng, k=k, dtype=dtype, strides=stride, padding=padding, pw_activation="relu6",
          dw_activation="relu6")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("act", jax_fcm.ACTIVATION_NAMES)
def test_activations(platform, rng, dtype, act):
    # Each activation on one side, another on the other: the kernel keeps them apart.
    check(platform, rng, dtype=dtype, pw_activation=act, dw_activation="silu")
    check(platform, rng, dtype=dtype, pw_activation="relu", dw_activation=act)


@pytest.mark.parametrize(
    "n,h,w,cin,cmid",
    [
        (1, 1, 1, 1, 1),
        (1, 9, 17, 3, 18),     # Cin and Cmid not multiples of the 16-byte vector
        (3, 13, 1, 16, 96),
        (1, 7, 13, 37, 70),    # Cmid spans 3 chunks, the last partial
        (3, 8, 8, 24, 144),    # MobileNetV2-like, an exact tile
        (3, 5, 6, 65, 33),     # Cin over 4 GEMM steps, the last partial
        (1, 20, 19, 8, 520),   # 17 chunks: several chunks per block, several groups per tile
    ],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("stride", [1, 2])
def test_odd_shapes(platform, rng, n, h, w, cin, cmid, dtype, stride):
    check(platform, rng, n=n, h=h, w=w, cin=cin, cmid=cmid, dtype=dtype, strides=stride, pw_activation="hard_swish",
          dw_activation="relu")


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
def test_full_precision(platform, rng, dtype):
    # float32 HIGHEST: the 1x1 conv in fp32 FFMA (tolerance "float32"); the
    # depthwise output is never rounded to TF32.
    check(platform, rng, cin=24, cmid=72, dtype=dtype, precision="highest", pw_activation="silu")


@pytest.mark.parametrize("implementation", ["split", "xla", None])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
def test_other_paths_match(platform, rng, implementation, dtype):
    check(platform, rng, dtype=dtype, k=5, strides=2, pw_activation="relu6", dw_activation="relu6",
          implementation=implementation)


def uses_kernel(args, **kw) -> bool:
    return "jax_fcm_pw_dw" in jax.jit(lambda *a: call(a, **kw)).lower(*args).as_text()


def test_lowering_names_the_ffi_target(rng):
    args = random_pair(rng, 1, 8, 8, 16, 32, 3, jnp.float32)
    for platform in ("cpu", "cuda"):
        text = jax.jit(lambda *a: call(a, implementation="fused")).trace(*args).lower(
            lowering_platforms=(platform,)).as_text()
        assert "jax_fcm_pw_dw" in text
    for implementation in ("xla", "split"):
        assert not uses_kernel(args, implementation=implementation)


@pytest.mark.parametrize("n,hw,cin,cmid,k,stride", [
    (64, 56, 24, 144, 3, 1),   # MobileNetV2 stage 2
    (64, 112, 16, 96, 3, 2),
    (1, 56, 24, 144, 3, 1),
    (8, 14, 80, 480, 5, 1),    # EfficientNet k5
    (64, 7, 160, 960, 3, 1),
])
def test_default_follows_the_planner(n, hw, cin, cmid, k, stride):
    x = jax.ShapeDtypeStruct((n, hw, hw, cin), jnp.bfloat16)
    args = (x, jax.ShapeDtypeStruct((1, 1, cin, cmid), jnp.bfloat16), jax.ShapeDtypeStruct((k, k, 1, cmid), jnp.bfloat16),
            None, None)
    fused, why = planner.pw_dw_choice(x.shape, cmid, k, stride, jnp.bfloat16, gpu=gpu.detect(jax.default_backend()))
    assert "model:" in why
    assert uses_kernel(args, strides=stride) == fused


def test_planner_weighs_saved_bytes_against_recomputation():
    h100 = gpu.PRESETS["h100"]

    def recompute(x_shape, k, stride):
        why = planner.pw_dw_choice(x_shape, 144, k, stride, jnp.bfloat16, gpu=h100)[1]
        return float(why.split("(")[1].split("x")[0])

    # The expansion recomputed over each 8x8 tile's window: (7 + k)^2 / 64 at
    # stride 1, 17^2 / 16^2 at stride 2, nothing where the window is the image.
    assert recompute((64, 56, 56, 24), 3, 1) == pytest.approx(100 / 64, abs=0.01)
    assert recompute((64, 56, 56, 24), 7, 1) == pytest.approx(196 / 64, abs=0.01)
    assert recompute((64, 112, 112, 24), 3, 2) == pytest.approx(289 / 256, abs=0.01)
    assert recompute((64, 7, 7, 24), 3, 1) == pytest.approx(1.0)
    # Fewer bytes fused in every case: the expanded tensor is neither written nor read.
    assert "fused moves 63% fewer DRAM bytes" in planner.pw_dw_choice((64, 56, 56, 24), 144, 3, 1, jnp.bfloat16,
                                                                     gpu=h100)[1]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("stride", [1, 2])
def test_grad_matches_reference(platform, rng, dtype, stride):
    args = random_pair(rng, 2, 9, 11, 12, 36, 3, dtype)
    kw = dict(strides=stride, pw_activation="silu", dw_activation="relu6")

    def loss(impl):
        return lambda *a: jnp.sum(call(a, implementation=impl, precision="highest", **kw).astype(jnp.float32) ** 2)

    argnums = tuple(range(5))
    grads = run_on(platform, jax.grad(loss("fused"), argnums=argnums), *args)
    f32_ref = run_on("cpu", jax.grad(loss("xla"), argnums=argnums), *[a.astype(jnp.float32) for a in args])
    ref = run_on(platform, jax.grad(loss("xla"), argnums=argnums), *args)
    for g, r, r32 in zip(grads, ref, f32_ref):
        assert g.dtype == jnp.dtype(dtype)
        # The backward is the reference's (as in test_mbconv): only the
        # forward output differs, so about as far from float32 as lax's own.
        floor = TOLERANCES["float32"] if dtype == jnp.float32 else 2 * TOLERANCES["bfloat16"]
        assert max_normalized_error(g, r32) <= max(floor, 1.25 * max_normalized_error(r, r32))


def test_check_grads_first_and_second_order(rng):
    args = random_pair(rng, 1, 6, 5, 4, 8, 3, np.float32)
    f = jax.jit(lambda *a: call(a, pw_activation="silu", dw_activation="silu", implementation="fused"))
    with jax.default_device(jax.devices("cpu")[0]):
        args = jax.device_put(args, jax.devices("cpu")[0])
        check_grads(f, args, order=2, modes=["rev"], eps=1e-2, atol=2e-2, rtol=2e-2)


def test_vmap_over_input_folds_into_batch(platform, rng):
    x, *weights = random_pair(rng, 2, 7, 9, 10, 24, 5, jnp.float32, lead=(3,))
    f = jax.vmap(lambda x: call((x, *weights), implementation="fused"))
    fused = run_on(platform, f, x)
    ref = jax.vmap(lambda x: call((x, *weights), implementation="xla", precision="highest"))(x)
    assert fused.shape == (3, 2, 7, 9, 24)
    assert_matches(fused, ref, tolerance_key(jnp.float32, platform))
    assert jax.jit(f).lower(x).as_text().count("jax_fcm_pw_dw") == 1  # one launch, not a loop


def test_vmap_over_weights(platform, rng):
    x, wp, wd, bp, bd = random_pair(rng, 2, 7, 9, 10, 24, 3, jnp.float32)
    wps = jnp.stack([wp, 2 * wp, -wp])
    fused = run_on(platform, jax.vmap(lambda e: call((x, e, wd, bp, bd), implementation="fused")), wps)
    ref = jnp.stack([call((x, e, wd, bp, bd), implementation="xla", precision="highest") for e in wps])
    assert_matches(fused, ref, tolerance_key(jnp.float32, platform))


def test_batch_sharding_and_shard_map(mesh, rng):
    args = random_pair(rng, 8, 9, 11, 16, 48, 3, np.float32)
    f = jax.jit(lambda *a: call(a, implementation="fused"))
    ref = f(*jax.device_put(args, jax.devices("cpu")[0]))
    x = jax.device_put(args[0], NamedSharding(mesh, P("batch")))
    out = f(x, *args[1:])
    assert_matches(out, ref, "float32")
    assert out.sharding.spec[0] == "batch"
    hlo = f.lower(x, *args[1:]).compile().as_text()
    assert "all-gather" not in hlo and "jax_fcm_pw_dw" in hlo
    mapped = jax.shard_map(lambda *a: call(a, implementation="fused"), mesh=mesh,
                           in_specs=(P("batch"),) + (P(),) * 4, out_specs=P("batch"))
    assert_matches(jax.jit(mapped)(*args), ref, "float32")


def valid_pair():
    x, wp, wd, *_ = random_pair(np.random.default_rng(0), 1, 8, 8, 8, 16, 3, jnp.float32)
    return dict(x=x, pw_kernel=wp, dw_kernel=wd)


# One change to a valid call (valid_pair: x (1, 8, 8, 8) float32, Cmid 16)
# -> the error and its message; docs/errors.md lists them (tests/test_dw_pw_errors.py writes it).
BAD_INPUTS = [
    (dict(x=jnp.ones((8, 8, 8))), ValueError, "rank >= 4"),
    (dict(x=jnp.ones((1, 8, 8, 8), jnp.int8)), TypeError, "must have dtype"),
    (dict(pw_kernel=jnp.ones((1, 1, 8, 16), jnp.bfloat16)), TypeError, "cast the parameters"),
    (dict(pw_kernel=jnp.ones((1, 1, 4, 16))), ValueError, "pw_kernel must have shape"),
    (dict(dw_kernel=jnp.ones((3, 3, 1, 4))), ValueError, "dw_kernel must have shape"),
    (dict(dw_kernel=jnp.ones((4, 4, 1, 16))), ValueError, "dw_kernel size k"),
    (dict(pw_bias=jnp.ones((8,))), ValueError, "pw_bias must have shape"),
    (dict(dw_bias=jnp.ones((4,))), ValueError, "dw_bias must have shape"),
    (dict(strides=3), ValueError, "strides must be 1 or 2"),
    (dict(pw_activation="tanh"), ValueError, "pw_activation"),
    (dict(dw_activation="tanh"), ValueError, "dw_activation"),
    (dict(implementation="cudnn"), ValueError, "implementation"),
]


def call_with(change):
    return jax_fcm.pw_dw(**{**valid_pair(), **change})


@pytest.mark.parametrize("change,error,match", BAD_INPUTS)
def test_bad_input(change, error, match):
    with pytest.raises(error, match=match):
        call_with(change)


def test_direct_ffi_call_with_bad_shapes_is_an_error(platform, rng):
    x, wp, wd, bp, bd = random_pair(rng, 1, 8, 8, 8, 16, 3, jnp.float32)
    attrs = dict(stride=np.int64(1), pad_top=np.int64(1), pad_bottom=np.int64(1), pad_left=np.int64(1),
                 pad_right=np.int64(1), pw_activation=np.int64(2), dw_activation=np.int64(1), pw_math=np.int64(0))
    good = jax.ShapeDtypeStruct((1, 8, 8, 16), jnp.float32)
    ops = (x, wp, bp, wd, bd)
    check_ffi_rejects(platform, "jax_fcm_pw_dw", attrs, (good, ops), [
        (jax.ShapeDtypeStruct((1, 7, 8, 16), jnp.float32), ops, {}, "result must be"),
        (jax.ShapeDtypeStruct((1, 8, 8, 16), jnp.bfloat16), ops, {}, "share x's dtype"),
        (good, ops, dict(stride=np.int64(3)), "stride must be 1 or 2"),
        (good, ops, dict(dw_activation=np.int64(99)), "unknown activation"),
        (good, ops, dict(pw_math=np.int64(7)), "pw_math"),
        (good, (x, wp, bp, wp, bd), {}, "dw_kernel must be"),
        (good, (x, wp, bp[:8], wd, bd), {}, "expand_bias must be"),
    ])


def test_smem_bytes_without_the_projection():
    # mbconv's 32-column plan less its two projection stages (33 x 40 x 2 B each).
    cfg = jax_fcm.MbconvConfig(tile_n=32)
    with_projection = mbconv_config.smem_bytes(cfg, k=3, stride=1, cin=24, itemsize=2)
    assert mbconv_config.smem_bytes(cfg, k=3, stride=1, cin=24, itemsize=2, project=False) == (
        with_projection - 2 * 33 * 40 * 2)


@pytest.mark.gpu
def test_shared_memory_limit_matches_the_kernel(rng):
    # The largest Cin whose block fits runs (the Python estimate is not below
    # the kernel's need); with 16 more channels "fused" raises before any
    # launch and the default takes the split path.
    limit = gpu.detect("gpu").smem_per_block
    need = functools.partial(mbconv_config.smem_bytes, jax_fcm.MbconvConfig(tile_n=32), k=3, stride=2, itemsize=4,
                             project=False)
    cin = max(c for c in range(16, 4096, 16) if need(cin=c) <= limit)
    check("gpu", rng, n=1, h=9, w=9, cin=cin, cmid=32, strides=2)
    big = random_pair(rng, 1, 9, 9, cin + 16, 32, 3, jnp.float32)
    with pytest.raises(ValueError, match="bytes of shared memory per block"):
        call(big, strides=2, implementation="fused")
    assert not uses_kernel(big, strides=2)
    assert_matches(call(big, strides=2), f32_reference(big, strides=2), "tf32")


def test_planner_picks_the_measured_path_on_recorded_h100_times():
    # docs/data/pw_dw_h100.csv: each pair timed fused ("<name>") and split
    # ("<name> split") on an H100. Where the two differ by more than 5 %, the
    # default takes the faster one; elsewhere it is within 5 % of it.
    import csv
    from pathlib import Path

    from jax_fcm import bench_pw_dw

    path = Path(__file__).resolve().parent.parent / "docs" / "data" / "pw_dw_h100.csv"
    times = {(r["layer"], int(r["n"]), r["dtype"]): float(r["jax_fcm_us"]) for r in csv.DictReader(path.open())}
    layers = {layer.name: layer for layer in bench_pw_dw.SUITE}
    checked = 0
    for (name, n, dtype), fused_us in times.items():
        if layers[name].path != "fused":
            continue
        layer, split_us = layers[name], times[(name + " split", n, dtype)]
        fuse, why = planner.pw_dw_choice((n, layer.hw, layer.hw, layer.cin), layer.cmid, layer.k, layer.stride,
                                         jnp.dtype(dtype), gpu=gpu.PRESETS["h100"])
        picked = fused_us if fuse else split_us
        assert picked <= 1.05 * min(fused_us, split_us), (name, n, dtype, why)
        checked += 1
    assert checked == 40
