"""jax_fcm.layer_norm_mlp (LayerNorm -> MLP -> layer scale -> + shortcut in
one kernel) against a float32 lax reference: the shortcut as x itself (a
pre-norm transformer's MLP half) or another tensor, dtypes, activations, odd
shapes and extra leading axes, on the CPU handler and the CUDA kernel; the
fallback where the kernel does not take the call, grads, vmap, errors. The
kernel's tiles, partial boxes and steps are swept through
jax_fcm.convnext_block (tests/test_convnext_block.py), which runs it after
its depthwise conv."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import array_maker, check_ffi_rejects, max_normalized_error, run_on, xla_reference
from test_convnext_block import TOLERANCES, skip_unless_taken

import jax_fcm


def random_mlp(rng, shape, hidden, dtype, shortcut=False):
    """x, ln_scale, ln_bias, pw1_kernel, pw1_bias, pw2_kernel, pw2_bias,
    layer_scale (and a shortcut) with unit-scale outputs."""
    arr = array_maker(rng, dtype)
    c = shape[-1]
    args = (arr(shape), jnp.asarray(1 + 0.2 * rng.standard_normal(c), dtype), arr((c,), 0.2),
            arr((1, 1, c, hidden), c ** -0.5), arr((hidden,), 0.2), arr((1, 1, hidden, c), hidden ** -0.5),
            arr((c,), 0.2), arr((c,), 0.5))
    return args + ((arr(shape),) if shortcut else ())


def f32_reference(args, **kw):
    shortcut = args[8] if len(args) > 8 else None
    kw = dict(kw, shortcut=None if shortcut is None else np.asarray(jnp.asarray(shortcut, jnp.float32)))
    return xla_reference(jax_fcm.layer_norm_mlp, args[:8], **kw)


def check(platform, rng, shape, hidden, dtype, shortcut=False, **kw):
    skip_unless_taken(dtype, shape[-1], hidden)
    args = random_mlp(rng, shape, hidden, dtype, shortcut)

    def op(*a):
        return jax_fcm.layer_norm_mlp(*a[:8], shortcut=a[8] if shortcut else None, implementation="kernel", **kw)

    out = run_on(platform, op, *args)
    assert out.dtype == jnp.dtype(dtype) and out.shape == shape
    err = max_normalized_error(out, f32_reference(args, **kw))
    tol = TOLERANCES[jnp.dtype(dtype).name]
    assert err <= tol, f"max-normalized error {err:.3g} > {tol}"


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16], ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("shortcut", [False, True], ids=["x", "given"])
@pytest.mark.parametrize("shape,hidden,act", [
    ((2, 32, 1, 144), 288, "silu"),          # MobileViT-S's first transformer: 2 x 32 tokens of 144, MLP x 2
    ((3, 7, 9, 96), 384, "gelu_exact"),      # ConvNeXt's 96-channel MLP, pixels off the 192-row tile
    ((1, 5, 5, 40), 160, "gelu_tanh"),       # a partial 64-channel box of C
], ids=str)
def test_matches_reference(platform, rng, dtype, shortcut, shape, hidden, act):
    check(platform, rng, shape, hidden, dtype, shortcut, activation=act)


def test_extra_leading_axes_and_eps(platform, rng):
    check(platform, rng, (2, 3, 4, 6, 32), 64, jnp.bfloat16, eps=1e-5)


def uses_fused_kernel(args, **kw) -> bool:
    return "jax_fcm_convnext_mlp" in jax.jit(lambda *a: jax_fcm.layer_norm_mlp(*a, **kw)).lower(*args).as_text()


def test_default_runs_the_fused_kernel_where_the_planner_picks_it(rng):
    # Light MLPs (<= 100,000 multiply-adds per pixel): the fused kernel at any N.
    assert uses_fused_kernel(random_mlp(rng, (1, 8, 8, 32), 128, jnp.bfloat16))
    assert not uses_fused_kernel(random_mlp(rng, (1, 8, 8, 32), 128, jnp.bfloat16), implementation="xla")


@pytest.mark.gpu
def test_default_falls_back_where_the_kernel_does_not_take_the_call(rng):
    args = random_mlp(rng, (2, 4, 4, 20), 80, jnp.bfloat16)  # C not a multiple of 8
    assert not uses_fused_kernel(args)
    assert max_normalized_error(jax_fcm.layer_norm_mlp(*args), f32_reference(args)) <= TOLERANCES["bfloat16"]
    with pytest.raises(ValueError, match="layer_norm_mlp kernel needs C and hidden multiples of 8"):
        jax_fcm.layer_norm_mlp(*args, implementation="kernel")


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
def test_grad_matches_reference(platform, rng, dtype):
    skip_unless_taken(dtype, 16, 64)
    args = random_mlp(rng, (2, 3, 5, 16), 64, dtype, shortcut=True)
    cot = jnp.asarray(rng.standard_normal((2, 3, 5, 16)), jnp.float32)

    def loss(impl):
        def f(*a):
            y = jax_fcm.layer_norm_mlp(*a[:8], shortcut=a[8], activation="silu", implementation=impl)
            return jnp.vdot(y.astype(jnp.float32), cot)
        return f

    argnums = tuple(range(9))
    grads = run_on(platform, jax.grad(loss("kernel"), argnums=argnums), *args)
    f32_ref = run_on("cpu", jax.grad(loss("xla"), argnums=argnums), *(jnp.asarray(a, jnp.float32) for a in args))
    lax_own = run_on(platform, jax.grad(loss("xla"), argnums=argnums), *args)
    tol = {"float32": 1e-5, "bfloat16": 2e-2}[jnp.dtype(dtype).name]
    for i, (g, r, ref) in enumerate(zip(grads, lax_own, f32_ref)):
        ours, lax_err = max_normalized_error(g, ref), max_normalized_error(r, ref)
        assert ours <= max(tol, 1.25 * lax_err), f"argument {i}: {ours:.3g} vs lax {lax_err:.3g}"


def test_vmap_folds_into_batch(platform, rng):
    skip_unless_taken(jnp.bfloat16, 32, 64)
    args = random_mlp(rng, (3, 2, 4, 5, 32), 64, jnp.bfloat16)
    out = run_on(platform, jax.vmap(lambda x: jax_fcm.layer_norm_mlp(x, *args[1:], implementation="kernel")), args[0])
    for i in range(3):
        assert max_normalized_error(out[i], f32_reference((args[0][i],) + args[1:])) <= TOLERANCES["bfloat16"]


def valid_call():
    c = 16
    return dict(x=jnp.ones((1, 4, 4, c)), ln_scale=jnp.ones((c,)), ln_bias=jnp.zeros((c,)),
                pw1_kernel=jnp.ones((1, 1, c, 32)), pw1_bias=None, pw2_kernel=jnp.ones((1, 1, 32, c)), pw2_bias=None)


# One change to a valid call (x (1, 4, 4, 16) float32, ln_scale / ln_bias (16,),
# pw1_kernel (1, 1, 16, 32), pw2_kernel (1, 1, 32, 16)) -> the error and its
# message; docs/errors.md lists them.
BAD_INPUTS = [
    (dict(x=jnp.ones((4, 4, 16))), ValueError, "rank >= 4"),
    (dict(x=jnp.ones((1, 4, 4, 16), jnp.bfloat16)), TypeError, "ln_scale has dtype float32 but x has bfloat16"),
    (dict(shortcut=jnp.ones((1, 4, 4, 8))), ValueError, "shortcut must have shape x's shape"),
    (dict(shortcut=jnp.ones((1, 4, 4, 16), jnp.float16)), TypeError, "shortcut has dtype float16"),
    (dict(ln_bias=jnp.ones((8,))), ValueError, r"ln_bias must have shape \(C,\)"),
    (dict(pw1_kernel=jnp.ones((16, 32))), ValueError, r"pw1_kernel must have shape \(1, 1, C, hidden\)"),
    (dict(pw2_kernel=jnp.ones((1, 1, 32, 8))), ValueError, "map back to the input's C=16 channels"),
    (dict(layer_scale=jnp.ones((32,))), ValueError, r"layer_scale must have shape \(C,\)"),
    (dict(eps=-1.0), ValueError, "eps must be a positive finite number"),
    (dict(activation="gelu"), ValueError, "ambiguous: use 'gelu_exact'"),
    (dict(implementation="cuda"), ValueError, "implementation must be one of"),
]


def call_with(change):
    return jax_fcm.layer_norm_mlp(**{**valid_call(), **change})


@pytest.mark.parametrize("change,error,match", BAD_INPUTS)
def test_bad_input(change, error, match):
    with pytest.raises(error, match=match):
        call_with(change)


def test_direct_ffi_call_with_the_same_buffer_as_x_and_shortcut(platform, rng):
    # A transformer's MLP passes x twice (as x and as the shortcut).
    x, ln_s, ln_b, w1, b1, w2, b2, ls = random_mlp(rng, (1, 8, 8, 16), 64, jnp.bfloat16)
    attrs = dict(pw1_activation=np.int64(3), eps=np.float32(1e-6))
    good = jax.ShapeDtypeStruct(x.shape, x.dtype)
    check_ffi_rejects(platform, "jax_fcm_convnext_mlp", attrs, (good, (x, x, ln_s, ln_b, w1, b1, w2, b2, ls)), [
        (good, (x, x, ln_s, ln_b, w1, b1, w2, b2, ls), dict(eps=np.float32(float("inf"))), "eps must be"),
    ])
