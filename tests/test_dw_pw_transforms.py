"""jit lowering, grad, vmap and direct FFI calls of dw_pw."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from conftest import (TOLERANCES, assert_matches, f32_reference, max_normalized_error, random_layer, run_on,
                      tolerance_key)

import jax_fcm

KW = dict(strides=2, padding="SAME", dw_activation="relu6", pw_activation="silu")


def test_lowering_names_the_ffi_target(rng):
    # A CPU-only jaxlib accepts any CUDA registration silently; the lowered
    # program proves the op really goes through our target.
    args = random_layer(rng, 1, 8, 8, 16, 8, 3, jnp.float32)
    for platform in ("cpu", "cuda"):
        text = jax.jit(lambda *a: jax_fcm.dw_pw(*a, **KW)).trace(*args).lower(lowering_platforms=(platform,)).as_text()
        assert "jax_fcm_dw_pw" in text
    text = jax.jit(lambda *a: jax_fcm.dw_pw(*a, implementation="xla", **KW)).lower(*args).as_text()
    assert "jax_fcm_dw_pw" not in text


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("stride", [1, 2])
def test_split_implementation(platform, rng, dtype, stride):
    # implementation="split": jax_fcm.depthwise, then XLA's 1x1 convolution
    # (the Flax layers' unfused path), against the same float32 reference.
    args = random_layer(rng, 3, 13, 7, 24, 40, 5, dtype)
    kw = dict(strides=stride, dw_activation="relu6", pw_activation="silu")
    text = jax.jit(lambda *a: jax_fcm.dw_pw(*a, implementation="split", **kw)).lower(*args).as_text()
    assert "jax_fcm_depthwise" in text and "jax_fcm_dw_pw" not in text
    out = run_on(platform, lambda *a: jax_fcm.dw_pw(*a, implementation="split", **kw), *args)
    assert_matches(out, f32_reference(*args, **kw), tolerance_key(dtype, platform))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("stride", [1, 2])  # on the GPU, stride 2 takes the depthwise backward kernel
def test_grad_matches_reference(platform, rng, dtype, stride):
    args = random_layer(rng, 2, 9, 11, 12, 7, 3, dtype)
    kw = dict(KW, strides=stride)

    def loss(impl):
        return lambda *a: jnp.sum(jax_fcm.dw_pw(*a, implementation=impl, precision="highest", **kw).astype(jnp.float32) ** 2)

    grads = run_on(platform, jax.grad(loss(None), argnums=(0, 1, 2, 3, 4)), *args)
    f32_args = [a.astype(jnp.float32) for a in args]
    f32_ref = run_on("cpu", jax.grad(loss("xla"), argnums=(0, 1, 2, 3, 4)), *f32_args)
    if dtype == jnp.float32:
        for g, r in zip(grads, f32_ref):
            assert g.dtype == dtype
            assert_matches(g, r, "float32")
        return
    # bf16: the pointwise half of the backward runs through XLA in bf16 (its
    # bias gradient is a bf16 reduction), so hold each gradient to the float32
    # gradient of the same rounded inputs no worse than lax's own bf16
    # gradients are (or the bf16 tolerance, whichever is looser).
    lax_bf16 = run_on(platform, jax.grad(loss("xla"), argnums=(0, 1, 2, 3, 4)), *args)
    for name, g, r, ref in zip(("x", "dw", "pw", "dw_bias", "pw_bias"), grads, lax_bf16, f32_ref):
        assert g.dtype == dtype
        ours, lax_err = max_normalized_error(g, ref), max_normalized_error(r, ref)
        assert ours <= max(TOLERANCES["bfloat16"], 1.25 * lax_err), f"{name}: {ours:.3g} vs lax bf16 {lax_err:.3g}"


@pytest.mark.parametrize("activations", [("silu", "gelu_exact"), ("gelu_tanh", None), (None, "silu")])
def test_check_grads_first_and_second_order(rng, activations):
    # Finite differences (float32: the ops take no float64) through the fused
    # forward on the CPU handler and its custom VJP, up to second order; smooth
    # activations only (finite differences across a ReLU kink are meaningless).
    args = random_layer(rng, 1, 6, 5, 4, 3, 3, np.float32)
    kw = dict(strides=1, padding="SAME", dw_activation=activations[0], pw_activation=activations[1])
    f = jax.jit(lambda *a: jax_fcm.dw_pw(*a, **kw))
    with jax.default_device(jax.devices("cpu")[0]):
        args = jax.device_put(args, jax.devices("cpu")[0])
        check_grads(f, args, order=2, modes=["rev"], eps=1e-2, atol=2e-2, rtol=2e-2)


def test_grad_without_bias(rng):
    x, dw, pw, _, _ = random_layer(rng, 1, 6, 6, 8, 4, 3, jnp.float32)
    g = jax.grad(lambda x, dw, pw: jnp.sum(jax_fcm.dw_pw(x, dw, pw, **KW)), argnums=(0, 1, 2))(x, dw, pw)
    r = jax.grad(lambda x, dw, pw: jnp.sum(jax_fcm.dw_pw(x, dw, pw, implementation="xla", **KW)), argnums=(0, 1, 2))(x, dw, pw)
    for a, b in zip(g, r):
        assert_matches(a, b, "float32")


def test_vmap_over_input_folds_into_batch(platform, rng):
    x, dw, pw, dwb, pwb = random_layer(rng, 2, 7, 9, 10, 6, 5, jnp.float32, lead=(3,))
    fused = run_on(platform, jax.vmap(lambda x: jax_fcm.dw_pw(x, dw, pw, dwb, pwb, **KW)), x)
    ref = jax.vmap(lambda x: jax_fcm.dw_pw(x, dw, pw, dwb, pwb, implementation="xla", precision="highest", **KW))(x)
    assert fused.shape == (3, 2, 4, 5, 6)
    assert_matches(fused, ref, tolerance_key(jnp.float32, platform))
    lowered = jax.jit(jax.vmap(lambda x: jax_fcm.dw_pw(x, dw, pw, dwb, pwb, **KW))).lower(x).as_text()
    assert lowered.count("jax_fcm_dw_pw") == 1  # one launch, not a loop


def test_vmap_over_weights(platform, rng):
    x, dw, pw, dwb, pwb = random_layer(rng, 2, 7, 9, 10, 6, 3, jnp.float32)
    dws = jnp.stack([dw, 2 * dw, -dw])
    fused = run_on(platform, jax.vmap(lambda d: jax_fcm.dw_pw(x, d, pw, dwb, pwb, **KW)), dws)
    ref = jnp.stack([jax_fcm.dw_pw(x, d, pw, dwb, pwb, implementation="xla", precision="highest", **KW) for d in dws])
    assert_matches(fused, ref, tolerance_key(jnp.float32, platform))


def test_vmap_of_grad(rng):
    x, dw, pw, dwb, pwb = random_layer(rng, 1, 6, 6, 8, 4, 3, jnp.float32, lead=(2,))
    f = lambda impl: jax.vmap(jax.grad(lambda x: jnp.sum(jax_fcm.dw_pw(x, dw, pw, dwb, pwb, implementation=impl, precision="highest", **KW) ** 2)))  # noqa: E731
    assert_matches(f(None)(x), f("xla")(x), "float32")


def test_direct_ffi_call_with_bad_shapes_is_an_error(rng):
    x, dw, pw, dwb, pwb = random_layer(rng, 1, 8, 8, 16, 8, 3, jnp.float32)
    attrs = dict(stride=np.int64(1), pad_top=np.int64(1), pad_bottom=np.int64(1), pad_left=np.int64(1),
                 pad_right=np.int64(1), dw_activation=np.int64(0), pw_activation=np.int64(0), pw_math=np.int64(0),
                 tile_h=np.int64(8), tile_w=np.int64(8), tile_n=np.int64(64), cout_tiles_per_block=np.int64(1),
                 channel_splits=np.int64(1), tiles_per_block=np.int64(0), channel_chunk=np.int64(32))
    good = jax.ShapeDtypeStruct((1, 8, 8, 8), jnp.float32)
    out = jax.ffi.ffi_call("jax_fcm_dw_pw", good)(x, dw, dwb, pw, pwb, **attrs)
    assert out.shape == (1, 8, 8, 8)
    wrong_result = jax.ShapeDtypeStruct((1, 7, 8, 8), jnp.float32)
    with pytest.raises(Exception, match="result must be"):
        jax.block_until_ready(jax.ffi.ffi_call("jax_fcm_dw_pw", wrong_result)(x, dw, dwb, pw, pwb, **attrs))
    with pytest.raises(Exception, match="stride must be 1 or 2"):
        jax.block_until_ready(jax.ffi.ffi_call("jax_fcm_dw_pw", good)(x, dw, dwb, pw, pwb, **{**attrs, "stride": np.int64(3)}))
    with pytest.raises(Exception, match="activation"):
        jax.block_until_ready(
            jax.ffi.ffi_call("jax_fcm_dw_pw", good)(x, dw, dwb, pw, pwb, **{**attrs, "pw_activation": np.int64(99)}))
    with pytest.raises(Exception, match="kernel size must be 3, 5 or 7"):  # a 1x1 kernel as the depthwise one
        jax.block_until_ready(jax.ffi.ffi_call("jax_fcm_dw_pw", good)(x, pw, dwb, pw, pwb, **attrs))
    with pytest.raises(Exception, match=r"dw_kernel must be \(k, k, 1, C=16\)"):
        jax.block_until_ready(jax.ffi.ffi_call("jax_fcm_dw_pw", good)(x, dw[..., :4], dwb, pw, pwb, **attrs))
