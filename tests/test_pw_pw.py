"""jax_fcm.pw_pw (two 1x1 convs, the intermediate on chip) against a float32
lax reference: every dtype and activation, odd shapes (pixel counts not a
multiple of the 128-pixel tile, channel counts not a multiple of 8, hidden
widths ending in a partial step), every output tile the CUDA kernel picks,
on the CPU handler and the CUDA kernel; the fallback to XLA, grads, vmap,
sharding, errors."""

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
from jax_fcm.pw_pw_op import MAX_CIN

DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]

# Max-normalized error (conftest.max_normalized_error) against a float32
# HIGHEST reference from the same rounded inputs, which keeps the
# intermediate in fp32. Ours rounds it to the input dtype (as two separate
# convolutions do), so 16-bit results carry the intermediate's rounding
# (half an ulp per value, averaged over the hidden channels) on top of the
# output's: a little looser than jax_fcm.pointwise's. float32 on the GPU
# runs both GEMMs on TF32 tensor cores (operands and intermediate rounded to
# 10 mantissa bits); the CPU handler is full fp32.
TOLERANCES = {"float32": 2e-6, "tf32": 3e-3, "bfloat16": 6e-3, "float16": 1.5e-3}


def tolerance(dtype, platform):
    name = jnp.dtype(dtype).name
    return TOLERANCES["tf32" if name == "float32" and platform == "gpu" else name]


def random_pw_pw(rng, n, h, w, cin, hidden, cout, dtype, lead=()):
    """x, pw1_kernel, pw2_kernel, pw1_bias, pw2_bias with unit-scale outputs."""
    arr = array_maker(rng, dtype)
    return (arr(tuple(lead) + (n, h, w, cin)), arr((1, 1, cin, hidden), 1.0 / np.sqrt(cin)),
            arr((1, 1, hidden, cout), 1.0 / np.sqrt(hidden)), arr((hidden,), 0.5), arr((cout,), 0.5))


def f32_reference(args, **kw):
    return xla_reference(jax_fcm.pw_pw, args, **kw)


def check(platform, rng, *, n=3, h=5, w=7, cin=24, hidden=96, cout=40, dtype=jnp.float32, lead=(), bias=True, **kw):
    x, w1, w2, b1, b2 = random_pw_pw(rng, n, h, w, cin, hidden, cout, dtype, lead)
    args = (x, w1, w2, b1 if bias else None, b2 if bias else None)
    out = run_on(platform, lambda *a: jax_fcm.pw_pw(*a, implementation="kernel", **kw), *args)
    assert out.dtype == jnp.dtype(dtype)
    assert out.shape == tuple(lead) + (n, h, w, cout)
    err = max_normalized_error(out, f32_reference(args, **kw))
    tol = tolerance(dtype, platform)
    assert err <= tol, f"max-normalized error {err:.3g} > {tol}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("act", jax_fcm.ACTIVATION_NAMES)
def test_activations(platform, rng, dtype, act):
    # Each activation first, and (shifted by one in the list) second.
    names = list(jax_fcm.ACTIVATION_NAMES)
    second = names[(names.index(act) + 1) % len(names)]
    check(platform, rng, dtype=dtype, pw1_activation=act, pw2_activation=second)


# (n, h, w, Cin, hidden, Cout): the CUDA kernel's output tiles (32, 64, 96,
# 128; pw_pw_tile_n), partial pixel tiles, hidden widths that end in a partial
# step (32 or 64 channels at 16 bits, 32 at float32), channel counts off the
# 16-byte vectors (element-wise copies), Cin at the kernel's limit.
LAYOUT_SHAPES = [
    (1, 1, 1, 1, 1, 1),           # one pixel, one channel each
    (1, 9, 17, 3, 5, 7),          # nothing a multiple of 8: element-wise copies everywhere
    (3, 13, 1, 17, 33, 33),       # M = 39 < one tile; Cout one past a 32 tile
    (2, 28, 28, 96, 384, 96),     # ConvNeXt-T stage 1 MLP: one 96-column tile (wgmma on Hopper)
    (1, 14, 14, 192, 768, 192),   # stage 2 MLP at the 16-bit Cin limit: two 96-column tiles
    (3, 7, 7, 144, 24, 144),      # MobileNetV2 projection -> next expansion: hidden < one step
    (1, 10, 13, 40, 200, 130),    # two 96-column tiles, the second 34 wide; a partial last step
    (2, 9, 9, 96, 64, 32),        # 32-column tile
    (1, 16, 16, 64, 256, 64),     # 64-column tile, exactly two 128-row tiles
    # 16-bit on Hopper, intermediates of 384+ channels: the wgmma kernel
    # (192-row blocks, 64-channel steps and boxes of Cin).
    (1, 9, 23, 40, 392, 72),      # 96-column tile, Cout 72; Cin one partial box; last step 8 wide; M = 207
    (1, 12, 20, 64, 512, 128),    # 128-column tile; M = 240
    (2, 10, 10, 16, 384, 48),     # 64-column tile, Cout 48; M = 200
]


@pytest.mark.parametrize("n,h,w,cin,hidden,cout", LAYOUT_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_shapes_and_layouts(platform, rng, n, h, w, cin, hidden, cout, dtype):
    if cin > MAX_CIN[jnp.dtype(dtype)]:
        pytest.skip(f"the kernel takes Cin <= {MAX_CIN[jnp.dtype(dtype)]} for {jnp.dtype(dtype).name}")
    check(platform, rng, n=n, h=h, w=w, cin=cin, hidden=hidden, cout=cout, dtype=dtype,
          pw1_activation="gelu_tanh", pw2_activation="relu6")


def test_without_biases_and_extra_leading_axes(platform, rng):
    check(platform, rng, bias=False, lead=(2,), n=1, dtype=jnp.bfloat16, pw1_activation="relu")


def test_unaligned_operands(platform, rng):
    check(platform, rng, n=2, h=3, w=5, cin=13, hidden=37, cout=7, dtype=jnp.float16, pw1_activation="silu")


def uses_kernel(args, **kw) -> bool:
    return "jax_fcm_pw_pw" in jax.jit(lambda *a: jax_fcm.pw_pw(*a, **kw)).lower(*args).as_text()


def test_default_takes_xla_where_the_kernel_does_not(rng):
    # Cin past the kernel's limit, and float32 at HIGHEST: the default runs
    # XLA's two convolutions (no FFI call in the program), "kernel" refuses.
    for dtype, cin, precision in [(jnp.bfloat16, 200, None), (jnp.float32, 16, "highest")]:
        args = random_pw_pw(rng, 1, 4, 4, cin, 32, 8, dtype)
        assert not uses_kernel(args, precision=precision)
        with pytest.raises(ValueError, match="implementation=None runs XLA"):
            jax_fcm.pw_pw(*args, precision=precision, implementation="kernel")


@pytest.mark.parametrize("dtype,n,hw,cin,hidden,cout,kernel", [
    # The planner's measured rule (jax_fcm.planner.use_pw_pw_kernel, H100):
    (jnp.bfloat16, 1, 56, 144, 24, 144, True),     # light pairs, even at N = 1
    (jnp.float16, 64, 28, 192, 32, 192, True),
    (jnp.bfloat16, 8, 56, 96, 384, 96, True),      # ConvNeXt stage 1 with a wave of pixel tiles
    (jnp.bfloat16, 1, 56, 96, 384, 96, False),     # ... not at N = 1
    (jnp.bfloat16, 64, 32, 144, 288, 144, False),  # MobileViT's MLP: too much work per pixel
    (jnp.bfloat16, 64, 28, 192, 768, 192, False),
    (jnp.float32, 64, 56, 96, 384, 96, False),     # float32 (TF32) never measured faster
])
def test_default_follows_the_planner(dtype, n, hw, cin, hidden, cout, kernel):
    x = jax.ShapeDtypeStruct((n, hw, hw, cin), dtype)
    w1, w2 = jax.ShapeDtypeStruct((1, 1, cin, hidden), dtype), jax.ShapeDtypeStruct((1, 1, hidden, cout), dtype)
    assert uses_kernel((x, w1, w2)) == kernel
    assert planner.use_pw_pw_kernel(x.shape, hidden, cout, dtype, gpu.PRESETS["h100"]) == kernel


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
def test_grad_matches_reference(platform, rng, dtype):
    x, w1, w2, b1, b2 = random_pw_pw(rng, 3, 5, 6, 20, 48, 12, dtype)
    cot = jnp.asarray(rng.standard_normal((3, 5, 6, 12)), jnp.float32)
    kw = dict(pw1_activation="gelu_exact", pw2_activation="silu")

    def loss(impl):
        return lambda *a: jnp.vdot(jax_fcm.pw_pw(*a, implementation=impl, **kw).astype(jnp.float32), cot)

    argnums = (0, 1, 2, 3, 4)
    grads = run_on(platform, jax.grad(loss("kernel"), argnums=argnums), x, w1, w2, b1, b2)
    f32_ref = run_on("cpu", jax.grad(loss("xla"), argnums=argnums),
                     *(jnp.asarray(a, jnp.float32) for a in (x, w1, w2, b1, b2)))
    lax_own = run_on(platform, jax.grad(loss("xla"), argnums=argnums), x, w1, w2, b1, b2)
    tol = {"float32": 1e-5 if platform == "cpu" else 4e-3, "bfloat16": 2e-2}[jnp.dtype(dtype).name]
    for name, g, r, ref in zip(("x", "w1", "w2", "b1", "b2"), grads, lax_own, f32_ref):
        assert g.dtype == jnp.dtype(dtype)
        ours, lax_err = max_normalized_error(g, ref), max_normalized_error(r, ref)
        assert ours <= max(tol, 1.25 * lax_err), f"d{name}: {ours:.3g} vs lax {lax_err:.3g}"


def test_check_grads_first_and_second_order(rng):
    args = random_pw_pw(rng, 2, 3, 4, 5, 9, 6, jnp.float32)
    f = lambda *a: jax_fcm.pw_pw(*a, pw1_activation="silu", pw2_activation="gelu_tanh", implementation="kernel")  # noqa: E731
    check_grads(f, args, order=2, modes=["rev"], atol=2e-2, rtol=2e-2)


def test_vmap_folds_into_batch_and_maps_weights(platform, rng):
    x, w1, w2, b1, b2 = random_pw_pw(rng, 2, 5, 4, 12, 40, 20, jnp.bfloat16, lead=(3,))
    f = lambda x, w1, w2: jax_fcm.pw_pw(x, w1, w2, b1, b2, pw1_activation="relu", implementation="kernel")  # noqa: E731
    tol = TOLERANCES["bfloat16"]
    out = run_on(platform, jax.vmap(f, in_axes=(0, None, None)), x, w1, w2)
    assert max_normalized_error(out, f32_reference((x, w1, w2, b1, b2), pw1_activation="relu")) <= tol
    w2s = jnp.stack([w2, 2 * w2, -w2])
    out = run_on(platform, jax.vmap(f, in_axes=(0, None, 0)), x, w1, w2s)
    for i in range(3):
        ref = f32_reference((x[i], w1, w2s[i], b1, b2), pw1_activation="relu")
        assert max_normalized_error(out[i], ref) <= tol


def test_batch_sharding_and_shard_map(mesh, rng):
    args = random_pw_pw(rng, 8, 5, 5, 16, 64, 24, jnp.float32)
    ref = f32_reference(args, pw1_activation="gelu_exact")
    xs = jax.device_put(args[0], NamedSharding(mesh, P("batch")))
    f = lambda *a: jax_fcm.pw_pw(*a, pw1_activation="gelu_exact", implementation="kernel")  # noqa: E731
    jitted = jax.jit(f)
    out = jitted(xs, *args[1:])
    assert out.sharding.spec[0] == "batch"
    compiled = jitted.lower(xs, *args[1:]).compile().as_text()
    assert "jax_fcm_pw_pw" in compiled and "all-gather" not in compiled
    assert max_normalized_error(out, ref) <= TOLERANCES["float32"]
    mapped = jax.shard_map(f, mesh=mesh, in_specs=(P("batch"), P(), P(), P(), P()), out_specs=P("batch"))
    assert max_normalized_error(jax.jit(mapped)(xs, *args[1:]), ref) <= TOLERANCES["float32"]


def valid_call():
    return dict(x=jnp.ones((1, 8, 8, 16)), pw1_kernel=jnp.ones((1, 1, 16, 32)), pw2_kernel=jnp.ones((1, 1, 32, 8)))


# One change to a valid call (x (1, 8, 8, 16) float32, pw1_kernel
# (1, 1, 16, 32), pw2_kernel (1, 1, 32, 8)) -> the error and its message;
# docs/errors.md lists them (tests/test_dw_pw_errors.py writes it).
BAD_INPUTS = [
    (dict(x=jnp.ones((8, 8, 16))), ValueError, "rank >= 4"),
    (dict(x=jnp.ones((1, 8, 8, 16), jnp.int32)), TypeError, "x must have dtype"),
    (dict(x=jnp.ones((1, 8, 8, 16), jnp.bfloat16)), TypeError, "pw1_kernel has dtype float32 but x has bfloat16"),
    (dict(pw2_kernel=jnp.ones((1, 1, 32, 8), jnp.float16)), TypeError, "pw2_kernel has dtype float16"),
    (dict(pw1_kernel=[[1.0]]), TypeError, "pw1_kernel must be an array"),
    (dict(pw1_kernel=jnp.ones((1, 1, 8, 32))), ValueError, r"pw1_kernel must have shape \(1, 1, Cin, hidden\)"),
    (dict(pw1_kernel=jnp.ones((16, 32))), ValueError, r"pw1_kernel must have shape \(1, 1, Cin, hidden\)"),
    (dict(pw2_kernel=jnp.ones((1, 1, 16, 8))), ValueError, r"pw2_kernel must have shape \(1, 1, hidden, Cout\)"),
    (dict(pw2_kernel=jnp.ones((3, 3, 32, 8))), ValueError, r"pw2_kernel must have shape \(1, 1, hidden, Cout\)"),
    (dict(pw2_kernel=jnp.ones((1, 1, 32, 0))), ValueError, "channel counts must be positive"),
    (dict(pw1_bias=jnp.ones((16,))), ValueError, r"pw1_bias must have shape \(hidden,\)"),
    (dict(pw2_bias=jnp.ones((32,))), ValueError, r"pw2_bias must have shape \(Cout,\)"),
    (dict(pw2_bias=jnp.ones((8,), jnp.float16)), TypeError, "pw2_bias has dtype float16"),
    (dict(pw1_activation="tanh"), ValueError, "pw1_activation must be None or one of"),
    (dict(pw2_activation="swish2"), ValueError, "pw2_activation must be None or one of"),
    (dict(precision="ultra"), ValueError, "precision must be"),
    (dict(implementation="fused"), ValueError, "implementation must be one of"),
    (dict(precision="highest", implementation="kernel"), ValueError, "TF32 tensor cores"),
    (dict(x=jnp.ones((1, 2, 2, 97)), pw1_kernel=jnp.ones((1, 1, 97, 32)), implementation="kernel"), ValueError,
     r"takes Cin <= 96 for float32"),
]


def call_with(change):
    return jax_fcm.pw_pw(**{**valid_call(), **change})


@pytest.mark.parametrize("change,error,match", BAD_INPUTS)
def test_bad_input(change, error, match):
    with pytest.raises(error, match=match):
        call_with(change)


def test_direct_ffi_call_with_bad_shapes_is_an_error(platform, rng):
    x, w1, w2, b1, b2 = random_pw_pw(rng, 1, 8, 8, 16, 32, 8, jnp.float32)
    attrs = dict(pw1_activation=np.int64(1), pw2_activation=np.int64(0))
    good = jax.ShapeDtypeStruct((1, 8, 8, 8), jnp.float32)

    wide = jnp.ones((1, 2, 2, 200), jnp.float32)
    check_ffi_rejects(platform, "jax_fcm_pw_pw", attrs, (good, (x, w1, b1, w2, b2)), [
        (jax.ShapeDtypeStruct((1, 7, 8, 8), jnp.float32), (x, w1, b1, w2, b2), {}, "result must be"),
        (good, (x, w1, b1, w2, b2), dict(pw2_activation=np.int64(99)), "unknown activation"),
        (good, (x, w1[:, :, :8], b1, w2, b2), {}, r"pw1_kernel must be \(1, 1, Cin=16, hidden\)"),
        (good, (x, w1, b1, w2[:, :, :16], b2), {}, r"pw2_kernel must be \(1, 1, hidden=32, Cout\)"),
        (good, (x, w1[0, 0], b1, w2, b2), {}, r"must be \(1, 1, in, out\)"),
        (good, (x, w1, b2, w2, b2), {}, "pw1_bias must be"),
        (good, (x, w1, b1, w2, b1), {}, "pw2_bias must be"),
        (good, (x, w1, b1, w2.astype(jnp.bfloat16), b2), {}, "must share x's dtype"),
        (good, (x[0], w1, b1, w2, b2), {}, "x must be NHWC"),
    ] + ([(jax.ShapeDtypeStruct((1, 2, 2, 8), jnp.float32), (wide, jnp.ones((1, 1, 200, 32)), b1, w2, b2), {},
           "the CUDA kernel takes Cin <= 96")] if platform == "gpu" else []))
