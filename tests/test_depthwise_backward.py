"""The depthwise backward kernel (jax_fcm_dw_backward: dx, kernel and bias
gradients in one pass) against the float32 lax transpose, on the CPU handler
and the CUDA kernel: every dtype, kernel size, stride, padding form, odd
shapes, several tile groups; its own gradient; direct FFI calls."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_matches, run_on

from jax_fcm import _args, _ffi, depthwise_backward

DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]
PADDINGS = ["SAME", "VALID", ((1, 2), (2, 0)), 1]


def operands(rng, n, h, w, c, k, stride, padding, dtype):
    pads = _args.normalize_padding(padding, h, w, k, stride)
    ho, wo = _args.output_size(h, k, stride, pads[0]), _args.output_size(w, k, stride, pads[1])
    x = jnp.asarray(rng.standard_normal((n, h, w, c)), dtype)
    dy = jnp.asarray(rng.standard_normal((n, ho, wo, c)), dtype)
    kernel = jnp.asarray(rng.standard_normal((k, k, 1, c)) / k, dtype)
    return pads, x, dy, kernel


def f32_gradients(stride, pads, x, dy, kernel):
    f32 = [np.asarray(jnp.asarray(a, jnp.float32)) for a in (x, dy, kernel)]
    with jax.default_device(jax.devices("cpu")[0]):
        return jax.jit(depthwise_backward._reference, static_argnums=(0, 1))(stride, pads, *f32)


def check(platform, rng, *, n=3, h=13, w=11, c=37, k=3, stride=1, padding="SAME", dtype=jnp.float32, groups=None):
    pads, x, dy, kernel = operands(rng, n, h, w, c, k, stride, padding, dtype)
    if groups is None:
        fn = lambda x, dy, kernel: depthwise_backward.depthwise_gradients(x, dy, kernel, stride=stride, padding=pads)  # noqa: E731
    else:
        def fn(x, dy, kernel):
            dx, partials = depthwise_backward._ffi_call(stride, pads, groups, x, dy, kernel)
            sums = partials.sum(axis=(0, 1))
            return dx, sums[: k * k].reshape(kernel.shape), sums[k * k]
    got = run_on(platform, fn, x, dy, kernel)
    ref = f32_gradients(stride, pads, x, dy, kernel)
    # Kernel and bias gradients sum N * Ho * Wo products: normalize by their scale.
    key = jnp.dtype(dtype).name
    for name, g, r in zip(("dx", "dkernel", "dbias"), got, ref):
        assert g.shape == r.shape, name
        assert_matches(g, r, key)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", PADDINGS, ids=str)
def test_kernel_stride_padding(platform, rng, dtype, k, stride, padding):
    check(platform, rng, k=k, stride=stride, padding=padding, dtype=dtype)


@pytest.mark.parametrize(
    "n,h,w,c",
    [(1, 1, 1, 1), (1, 7, 13, 3), (3, 13, 1, 96), (1, 17, 9, 70), (3, 24, 16, 32), (1, 30, 19, 65)],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("stride", [1, 2])
def test_odd_shapes(platform, rng, n, h, w, c, dtype, stride):
    check(platform, rng, n=n, h=h, w=w, c=c, stride=stride, dtype=dtype)


@pytest.mark.parametrize("groups", [1, 2, 3, 7, 40])
def test_tile_groups_sum_to_the_same_gradients(platform, rng, groups):
    # 40 groups > the 12 output tiles: blocks with no tile write zero partials.
    check(platform, rng, n=2, h=29, w=23, c=40, k=5, stride=1, groups=groups)


def test_groups_for_covers_tiles_and_sms():
    assert depthwise_backward.groups_for(64, 56, 56, 144, 132) == 7  # 64 * 7 * 5 slices = 2240 blocks
    assert depthwise_backward.groups_for(1, 7, 7, 960, 132) == 1
    assert depthwise_backward.groups_for(1, 112, 112, 32, 132) == 196  # capped at the tile count


def test_second_order_gradient(rng):
    pads, x, dy, kernel = operands(rng, 2, 9, 8, 12, 3, 1, "SAME", jnp.float32)
    loss = lambda fn: lambda x, dy, k: sum(jnp.sum(g ** 2) for g in fn(x, dy, k))  # noqa: E731
    ours = jax.grad(loss(lambda *a: depthwise_backward.depthwise_gradients(*a, stride=1, padding=pads)),
                    argnums=(0, 1, 2))(x, dy, kernel)
    ref = jax.grad(loss(lambda *a: depthwise_backward._reference(1, pads, *a)), argnums=(0, 1, 2))(x, dy, kernel)
    for g, r in zip(ours, ref):
        assert_matches(g, r, "float32")


def test_vmap_folds_into_the_batch(rng):
    pads, x, dy, kernel = operands(rng, 2, 9, 8, 12, 3, 2, "SAME", jnp.float32)
    xs, dys = jnp.stack([x, 2 * x]), jnp.stack([dy, -dy])
    got = jax.vmap(lambda x, dy: depthwise_backward.depthwise_gradients(x, dy, kernel, stride=2, padding=pads))(xs, dys)
    for i in range(2):
        ref = depthwise_backward._reference(2, pads, xs[i], dys[i], kernel)
        for g, r in zip(got, ref):
            assert_matches(g[i], r, "float32")


def test_padding_above_k_minus_1_is_rejected(rng):
    pads, x, dy, kernel = operands(rng, 1, 8, 8, 4, 3, 1, 3, jnp.float32)
    with pytest.raises(ValueError, match="exceeds k - 1"):
        depthwise_backward.depthwise_gradients(x, dy, kernel, stride=1, padding=pads)


def test_direct_ffi_call_with_bad_arguments_is_an_error(rng):
    pads, x, dy, kernel = operands(rng, 2, 8, 8, 16, 3, 1, "SAME", jnp.float32)
    attrs = dict(stride=np.int64(1), pad_top=np.int64(1), pad_bottom=np.int64(1), pad_left=np.int64(1),
                 pad_right=np.int64(1))
    types = (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct((2, 3, 10, 16), jnp.float32))
    call = jax.ffi.ffi_call(_ffi.DW_BACKWARD_TARGET, types)
    dx, partials = call(x, dy, kernel, **attrs)
    assert dx.shape == x.shape and partials.shape == (2, 3, 10, 16)
    cases = [
        (dict(attrs, stride=np.int64(3)), (x, dy, kernel), types, "stride must be 1 or 2"),
        (dict(attrs, pad_top=np.int64(3)), (x, dy, kernel), types, "padding must be between 0 and k - 1"),
        (attrs, (x, dy[:, :7], kernel), types, "dy must be"),
        (attrs, (x, dy, kernel[:, :, :, :8]), types, "kernel must be"),
        (attrs, (x, dy, kernel), (types[0], jax.ShapeDtypeStruct((2, 3, 9, 16), jnp.float32)), "dw_partials must be"),
        (attrs, (x, dy, kernel), (types[0], jax.ShapeDtypeStruct((2, 3, 10, 16), jnp.bfloat16)),
         "dw_partials must be float32"),
        (attrs, (x, dy.astype(jnp.bfloat16), kernel), types, "must share x's dtype"),
    ]
    for kw, args, out_types, message in cases:
        with pytest.raises(Exception, match=message):
            jax.block_until_ready(jax.ffi.ffi_call(_ffi.DW_BACKWARD_TARGET, out_types)(*args, **kw))


def test_gpu_rule_follows_the_measured_a_b():
    rule = depthwise_backward.pays_off_on_gpu
    assert rule(3, 2, 28, 28, jnp.bfloat16)       # stride 2
    assert rule(3, 1, 7, 7, jnp.bfloat16)         # 7 x 7 maps
    assert rule(7, 1, 56, 56, jnp.float32)        # cuDNN's FFT weight gradient
    assert not rule(7, 1, 56, 56, jnp.bfloat16)
    assert not rule(3, 1, 112, 112, jnp.bfloat16)  # MobileNet stride-1 layers keep the lax backward
