"""jax_fcm.convnext_block (depthwise conv, then LayerNorm + MLP + layer-scaled
residual in one kernel) against a float32 lax reference: every dtype the
kernel takes, kernel sizes, activations, odd shapes (pixel counts not a
multiple of the 192-row tile, channel counts ending in a partial 64-channel
box, not multiples of 8 on the CPU), inputs whose LayerNorm has a large mean,
on the CPU handler and the CUDA kernel; the fallback where the kernel does
not take a block, grads, vmap, sharding, errors."""

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
from jax_fcm.convnext_block_op import kernel_refusal

# Max-normalized error (conftest.max_normalized_error) against a float32
# HIGHEST reference from the same rounded inputs. The kernel rounds the
# LayerNorm's output and the hidden activations to the input dtype (as the
# separate layers do) and the block's output once; the reference keeps all
# of them in fp32. float32 runs on the CPU handler only (full fp32): the
# CUDA kernel is Hopper wgmma, 16-bit types.
TOLERANCES = {"float32": 5e-6, "bfloat16": 1.2e-2, "float16": 2e-3}


def random_block(rng, n, h, w, c, hidden, dtype, k=7, lead=(), mean=0.0):
    """The op's ten arguments with unit-scale outputs; `mean` shifts x (and
    so the depthwise output) off zero, as a LayerNorm input often is."""
    arr = array_maker(rng, dtype)
    x = jnp.asarray(mean + rng.standard_normal(tuple(lead) + (n, h, w, c)), dtype)
    return (x, arr((k, k, 1, c), 1.0 / k), arr((c,), 0.2), jnp.asarray(1 + 0.2 * rng.standard_normal(c), dtype),
            arr((c,), 0.2), arr((1, 1, c, hidden), c ** -0.5), arr((hidden,), 0.2),
            arr((1, 1, hidden, c), hidden ** -0.5), arr((c,), 0.2), arr((c,), 0.5))


def f32_reference(args, **kw):
    return xla_reference(jax_fcm.convnext_block, args, **kw)


def skip_unless_taken(dtype, c, hidden):
    # The op decides by the default backend: on a GPU machine its CPU-platform
    # tests also skip what the CUDA kernel does not take (CI runs them on a CPU).
    refusal = kernel_refusal(dtype, c, hidden)
    if refusal:
        pytest.skip(refusal)


def check(platform, rng, *, n=3, h=9, w=11, c=24, hidden=96, dtype=jnp.float32, k=7, lead=(), mean=0.0,
          optional=True, **kw):
    skip_unless_taken(dtype, c, hidden)
    args = random_block(rng, n, h, w, c, hidden, dtype, k, lead, mean)
    if not optional:  # dw_bias, pw1_bias, pw2_bias and layer_scale None
        args = args[:2] + (None,) + args[3:6] + (None, args[7], None, None)
    out = run_on(platform, lambda *a: jax_fcm.convnext_block(*a, implementation="kernel", **kw), *args)
    assert out.dtype == jnp.dtype(dtype)
    assert out.shape == tuple(lead) + (n, h, w, c)
    err = max_normalized_error(out, f32_reference(args, **kw))
    tol = TOLERANCES[jnp.dtype(dtype).name]
    assert err <= tol, f"max-normalized error {err:.3g} > {tol}"


DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]

# (n, h, w, C, hidden): ConvNeXt-T's first two stages (the kernel's C limit
# for 16-bit types is 192), pixel counts off the 192- and 128-row tiles (N = 1
# and 3), C ending in a partial 64-channel box (40, 136, 176) and hidden in a
# partial 64-channel step (232), the 64-, 96-, 128- and 192-column output tiles
# (C from 129 to 192 takes one 192-column tile, partly filled below 192).
SHAPES = [
    (1, 56, 56, 96, 384),     # stage 1: one 96-column tile; M = 3136
    (3, 14, 14, 192, 768),    # stage 2 at the C limit: two 96-column tiles
    (1, 9, 23, 40, 160),      # one partial box of C; M = 207
    (3, 5, 7, 136, 232),      # 136 = 2 boxes + 8 channels; a partial last hidden step; two 64+72 tiles
    (1, 12, 20, 64, 256),     # 64-column tile; M = 240
    (1, 1, 1, 8, 8),          # one pixel, 8 channels
    (2, 10, 10, 128, 512),    # 128-column tile
    (2, 9, 9, 176, 352),      # the 192-column tile (two warpgroups of 128 rows), 176 = 2 boxes + 48 channels
]


@pytest.mark.parametrize("n,h,w,c,hidden", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_shapes(platform, rng, n, h, w, c, hidden, dtype):
    check(platform, rng, n=n, h=h, w=w, c=c, hidden=hidden, dtype=dtype)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("act", ["gelu_exact", "gelu_tanh", "relu", "silu"])
def test_kernel_sizes_and_activations(platform, rng, dtype, k, act):
    check(platform, rng, n=2, h=13, w=9, c=48, hidden=192, dtype=dtype, k=k, activation=act)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_layer_norm_of_inputs_far_from_zero_mean(platform, rng, dtype):
    # x ~ 20 + N(0, 1): the LayerNorm's variance from E[x^2] - E[x]^2 would
    # lose most of its bits; the kernel's two passes over the resident row do not.
    check(platform, rng, n=1, h=16, w=16, c=96, hidden=384, dtype=dtype, mean=20.0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
def test_without_optional_operands_and_extra_leading_axes(platform, rng, dtype):
    check(platform, rng, n=1, h=6, w=5, c=32, hidden=128, dtype=dtype, lead=(2,), optional=False, eps=1e-3)


def test_channels_off_the_vector_on_the_cpu_handler(rng):
    # The CPU handler takes any channel counts (the CUDA kernel needs multiples of 8).
    check("cpu", rng, n=2, h=5, w=4, c=13, hidden=37, dtype=jnp.float16)


def uses_fused_kernel(args, **kw) -> bool:
    return "jax_fcm_convnext_mlp" in jax.jit(lambda *a: jax_fcm.convnext_block(*a, **kw)).lower(*args).as_text()


@pytest.mark.parametrize("n,hw,c,fused", [
    (1, 56, 96, True),    # light blocks: the fused kernel at every N
    (64, 28, 192, True),  # heavy blocks filling a wave of 192-pixel blocks
    (8, 28, 192, False),  # ... not a wave: XLA's GEMMs
    (1, 28, 192, False),
])
def test_default_follows_the_planner(n, hw, c, fused):
    x = jax.ShapeDtypeStruct((n, hw, hw, c), jnp.bfloat16)
    vec = jax.ShapeDtypeStruct((c,), jnp.bfloat16)
    args = (x, jax.ShapeDtypeStruct((7, 7, 1, c), jnp.bfloat16), vec, vec, vec,
            jax.ShapeDtypeStruct((1, 1, c, 4 * c), jnp.bfloat16), jax.ShapeDtypeStruct((4 * c,), jnp.bfloat16),
            jax.ShapeDtypeStruct((1, 1, 4 * c, c), jnp.bfloat16), vec, vec)
    assert uses_fused_kernel(args) == fused
    assert planner.layer_norm_mlp_choice(x.shape, c, jnp.bfloat16, gpu.PRESETS["h100"])[0] == fused
    assert not uses_fused_kernel(args, implementation="xla")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,c,hidden,fused", [
    (jnp.bfloat16, 96, 384, True),
    (jnp.float16, 192, 768, True),
    (jnp.bfloat16, 384, 1536, False),  # C past the kernel's limit: depthwise kernel + XLA LayerNorm + pw_pw's default
    (jnp.float32, 96, 384, False),     # float32: no wgmma
    (jnp.bfloat16, 20, 80, False),     # C not a multiple of 8
])
def test_default_falls_back_where_the_kernel_does_not_take_the_block(rng, dtype, c, hidden, fused):
    # `fused`: the kernel takes the block (whether the default picks it at
    # this small N is the planner's call, tested above).
    args = random_block(rng, 2, 7, 7, c, hidden, dtype)
    implementation = "kernel" if fused else None
    assert uses_fused_kernel(args, implementation=implementation) == fused
    out = jax_fcm.convnext_block(*args, implementation=implementation)
    err = max_normalized_error(out, f32_reference(args))
    tol = {"float32": 5e-3, "bfloat16": TOLERANCES["bfloat16"], "float16": TOLERANCES["float16"]}
    assert err <= tol[jnp.dtype(dtype).name]
    if not fused:
        with pytest.raises(ValueError, match="layer_norm_mlp kernel"):
            jax_fcm.convnext_block(*args, implementation="kernel")


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
def test_grad_matches_reference(platform, rng, dtype):
    skip_unless_taken(dtype, 32, 128)
    args = random_block(rng, 2, 6, 7, 32, 128, dtype)
    cot = jnp.asarray(rng.standard_normal((2, 6, 7, 32)), jnp.float32)

    def loss(impl):
        return lambda *a: jnp.vdot(jax_fcm.convnext_block(*a, implementation=impl).astype(jnp.float32), cot)

    argnums = tuple(range(10))
    grads = run_on(platform, jax.grad(loss("kernel"), argnums=argnums), *args)
    f32_ref = run_on("cpu", jax.grad(loss("xla"), argnums=argnums), *(jnp.asarray(a, jnp.float32) for a in args))
    lax_own = run_on(platform, jax.grad(loss("xla"), argnums=argnums), *args)
    tol = {"float32": 1e-5, "bfloat16": 2e-2}[jnp.dtype(dtype).name]
    names = ("x", "dw_kernel", "dw_bias", "ln_scale", "ln_bias", "pw1_kernel", "pw1_bias", "pw2_kernel", "pw2_bias",
             "layer_scale")
    for name, g, r, ref in zip(names, grads, lax_own, f32_ref):
        assert g.dtype == jnp.dtype(dtype)
        ours, lax_err = max_normalized_error(g, ref), max_normalized_error(r, ref)
        assert ours <= max(tol, 1.25 * lax_err), f"d{name}: {ours:.3g} vs lax {lax_err:.3g}"


def test_check_grads_first_and_second_order(rng):
    skip_unless_taken(jnp.float32, 6, 10)
    args = random_block(rng, 1, 3, 4, 6, 10, jnp.float32, k=3)
    f = lambda *a: jax_fcm.convnext_block(*a, implementation="kernel")  # noqa: E731
    check_grads(f, args, order=2, modes=["rev"], atol=2e-2, rtol=2e-2)


def test_vmap_folds_into_batch_and_maps_weights(platform, rng):
    skip_unless_taken(jnp.bfloat16, 32, 128)
    args = random_block(rng, 2, 5, 6, 32, 128, jnp.bfloat16, lead=(3,))
    x, rest = args[0], args[1:]

    def f(x, w2):
        return jax_fcm.convnext_block(x, *rest[:6], w2, *rest[7:], implementation="kernel")

    tol = TOLERANCES["bfloat16"]
    out = run_on(platform, jax.vmap(f, in_axes=(0, None)), x, rest[6])
    for i in range(3):
        assert max_normalized_error(out[i], f32_reference((x[i],) + rest)) <= tol
    w2s = jnp.stack([rest[6], 2 * rest[6], -rest[6]])
    out = run_on(platform, jax.vmap(f, in_axes=(0, 0)), x, w2s)
    for i in range(3):
        ref = f32_reference((x[i],) + rest[:6] + (w2s[i],) + rest[7:])
        assert max_normalized_error(out[i], ref) <= tol


def test_batch_sharding_and_shard_map(mesh, rng):
    skip_unless_taken(jnp.float32, 16, 64)
    args = random_block(rng, 8, 5, 5, 16, 64, jnp.float32)
    ref = f32_reference(args)
    xs = jax.device_put(args[0], NamedSharding(mesh, P("batch")))
    f = lambda *a: jax_fcm.convnext_block(*a, implementation="kernel")  # noqa: E731
    jitted = jax.jit(f)
    out = jitted(xs, *args[1:])
    assert out.sharding.spec[0] == "batch"
    compiled = jitted.lower(xs, *args[1:]).compile().as_text()
    assert "jax_fcm_convnext_mlp" in compiled and "all-gather" not in compiled
    assert max_normalized_error(out, ref) <= TOLERANCES["float32"]
    mapped = jax.shard_map(f, mesh=mesh, in_specs=(P("batch"),) + (P(),) * 9, out_specs=P("batch"))
    assert max_normalized_error(jax.jit(mapped)(xs, *args[1:]), ref) <= TOLERANCES["float32"]


def valid_call():
    c = 16
    return dict(x=jnp.ones((1, 8, 8, c)), dw_kernel=jnp.ones((7, 7, 1, c)), dw_bias=None, ln_scale=jnp.ones((c,)),
                ln_bias=jnp.zeros((c,)), pw1_kernel=jnp.ones((1, 1, c, 64)), pw1_bias=None,
                pw2_kernel=jnp.ones((1, 1, 64, c)), pw2_bias=None)


# One change to a valid call (x (1, 8, 8, 16) float32, dw_kernel (7, 7, 1, 16),
# ln_scale / ln_bias (16,), pw1_kernel (1, 1, 16, 64), pw2_kernel
# (1, 1, 64, 16)) -> the error and its message; docs/errors.md lists them.
BAD_INPUTS = [
    (dict(x=jnp.ones((8, 8, 16))), ValueError, "rank >= 4"),
    (dict(x=jnp.ones((1, 8, 8, 16), jnp.int8)), TypeError, "x must have dtype"),
    (dict(x=jnp.ones((1, 8, 8, 16), jnp.bfloat16)), TypeError, "dw_kernel has dtype float32 but x has bfloat16"),
    (dict(ln_scale=jnp.ones((16,), jnp.float16)), TypeError, "ln_scale has dtype float16"),
    (dict(dw_kernel=jnp.ones((7, 7, 1, 8))), ValueError, "dw_kernel"),
    (dict(dw_kernel=jnp.ones((4, 4, 1, 16))), ValueError, "dw_kernel"),
    (dict(ln_scale=jnp.ones((8,))), ValueError, r"ln_scale must have shape \(C,\)"),
    (dict(ln_bias=jnp.ones((1, 16))), ValueError, r"ln_bias must have shape \(C,\)"),
    (dict(pw1_kernel=jnp.ones((16, 64))), ValueError, r"pw1_kernel must have shape \(1, 1, C, hidden\)"),
    (dict(pw1_kernel=jnp.ones((1, 1, 16, 0)), pw2_kernel=jnp.ones((1, 1, 0, 16))), ValueError, "hidden >= 1"),
    (dict(pw2_kernel=jnp.ones((1, 1, 32, 16))), ValueError, r"pw2_kernel must have shape \(1, 1, hidden, C\)"),
    (dict(pw2_kernel=jnp.ones((1, 1, 64, 8))), ValueError, "map back to the input's C=16 channels"),
    (dict(pw1_bias=jnp.ones((16,))), ValueError, r"pw1_bias must have shape \(hidden,\)"),
    (dict(layer_scale=jnp.ones((64,))), ValueError, r"layer_scale must have shape \(C,\)"),
    (dict(eps=0.0), ValueError, "eps must be a positive finite number"),
    (dict(eps=float("nan")), ValueError, "eps must be a positive finite number"),
    (dict(activation="tanh"), ValueError, "activation must be None or one of"),
    (dict(precision="ultra"), ValueError, "precision must be"),
    (dict(implementation="fused"), ValueError, "implementation must be one of"),
]


def call_with(change):
    return jax_fcm.convnext_block(**{**valid_call(), **change})


@pytest.mark.parametrize("change,error,match", BAD_INPUTS)
def test_bad_input(change, error, match):
    with pytest.raises(error, match=match):
        call_with(change)


def test_direct_ffi_call_with_bad_shapes_is_an_error(platform, rng):
    x, _, _, ln_s, ln_b, w1, b1, w2, b2, ls = random_block(rng, 1, 8, 8, 16, 64, jnp.bfloat16)
    attrs = dict(pw1_activation=np.int64(4), eps=np.float32(1e-6))
    good = jax.ShapeDtypeStruct(x.shape, x.dtype)
    ops = (x, x, ln_s, ln_b, w1, b1, w2, b2, ls)

    def changed(i, value):
        return ops[:i] + (value,) + ops[i + 1:]

    check_ffi_rejects(platform, "jax_fcm_convnext_mlp", attrs, (good, ops), [
        (good, changed(1, x[:, :4]), {}, "residual must be x's shape"),
        (good, changed(2, ln_s[:8]), {}, r"ln_scale, ln_bias and layer_scale must be \(C,\)"),
        (good, changed(8, ls.astype(jnp.float32)), {}, "every operand must share x's dtype"),
        (jax.ShapeDtypeStruct((1, 8, 8, 8), x.dtype), ops[:6] + (w2[:, :, :, :8], b2[:8], ls), {},
         "map back to C=16"),
        (good, ops, dict(eps=np.float32(0.0)), "eps must be a positive finite number"),
        (good, ops, dict(pw1_activation=np.int64(99)), "unknown activation"),
        (jax.ShapeDtypeStruct((1, 8, 8, 8), x.dtype), ops, {}, "result must be"),
    ])
