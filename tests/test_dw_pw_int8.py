"""dw_pw_int8 (the int8 fused DW -> PW) against the same integer math in lax
ops, bit for bit: kernel sizes, strides, paddings, clamp ranges (ReLU,
ReLU6), odd shapes and every compiled tile configuration, on the CPU handler
and the CUDA kernel; the quantization helpers against the float op; vmap,
sharding and errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import array_maker, call_with_change, check_batch_transforms, check_ffi_rejects, run_on

import jax_fcm
from jax_fcm import quantization, tiling
from jax_fcm.quantization import QuantizedDwPw

PADDINGS = ["SAME", "VALID", ((1, 2), (2, 1)), 1]
CLAMPS = {"none": (-128, 127), "relu": (0, 127), "relu6": (0, 50)}


def random_params(rng, c, cout, k, dw_clamp=(-128, 127), pw_clamp=(-128, 127), wide_bias=False) -> QuantizedDwPw:
    """Full-range int8 weights, int32 biases and multipliers that spread the
    requantized values over the int8 range (some saturate). wide_bias: depthwise
    biases up to 2^29, where fp32(sum + bias) rounds (to multiples of 64)."""
    dw = rng.integers(-127, 128, (k, k, 1, c), dtype=np.int8)
    pw = rng.integers(-127, 128, (cout, c), dtype=np.int8)
    # the biases' spread: a depthwise sum's standard deviation (full-range values), or 2^28 for wide_bias
    dw_sum = 2.0 ** 28 if wide_bias else k * 73.0 * 73.0
    pw_sum = np.sqrt(c) * 60.0 * 73.0
    return QuantizedDwPw(
        dw_kernel=jnp.asarray(dw), pw_kernel=jnp.asarray(pw),
        dw_bias=jnp.asarray(rng.integers(-2 * int(dw_sum), 2 * int(dw_sum), c, dtype=np.int32)),
        pw_bias=jnp.asarray(rng.integers(-2 * int(pw_sum), 2 * int(pw_sum), cout, dtype=np.int32)),
        dw_multiplier=jnp.asarray(rng.uniform(20, 80, c) / dw_sum, jnp.float32),
        pw_multiplier=jnp.asarray(rng.uniform(40, 160, cout) / pw_sum, jnp.float32),
        dw_clamp=dw_clamp, pw_clamp=pw_clamp)


def random_input(rng, shape):
    return jnp.asarray(rng.integers(-128, 128, shape, dtype=np.int8))


def reference(x, q, **kw):
    with jax.default_device(jax.devices("cpu")[0]):
        return np.asarray(jax_fcm.dw_pw_int8(np.asarray(x), jax.device_get(q), implementation="xla", **kw))


def check(platform, rng, *, n=3, h=13, w=7, c=40, cout=24, k=3, lead=(), dw_clamp=(-128, 127),
          pw_clamp=(-128, 127), wide_bias=False, **kw):
    x = random_input(rng, tuple(lead) + (n, h, w, c))
    q = random_params(rng, c, cout, k, dw_clamp, pw_clamp, wide_bias)
    out = run_on(platform, lambda x, q: jax_fcm.dw_pw_int8(x, q, **kw), x, q)
    assert out.dtype == jnp.int8
    ref = reference(x, q, **kw)
    np.testing.assert_array_equal(np.asarray(out), ref)
    return ref


@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", PADDINGS, ids=str)
def test_kernel_stride_padding(platform, rng, k, stride, padding):
    check(platform, rng, k=k, strides=stride, padding=padding, dw_clamp=CLAMPS["relu6"], pw_clamp=CLAMPS["relu"])


@pytest.mark.parametrize("k", [3, 7])
def test_wide_depthwise_biases(platform, rng, k):
    """The kernel's depthwise sums start from the bias's low bits and add the
    high part in fp32 (cuda_src/requantize.h BiasedAccumulator): with biases
    past 2^24 that add rounds, and must round as fp32(int32 sum) does."""
    check(platform, rng, k=k, c=75, cout=40, wide_bias=True)


@pytest.mark.parametrize("dw_act", list(CLAMPS))
@pytest.mark.parametrize("pw_act", list(CLAMPS))
def test_clamp_ranges(platform, rng, dw_act, pw_act):
    ref = check(platform, rng, dw_clamp=CLAMPS[dw_act], pw_clamp=CLAMPS[pw_act])
    lo, hi = CLAMPS[pw_act]
    assert ref.min() == lo and ref.max() == hi  # the clamp is reached: the test sees saturation


@pytest.mark.parametrize(
    "n,h,w,c,cout",
    [
        (1, 1, 1, 1, 1),
        (1, 9, 17, 3, 18),      # C and Cout not multiples of the 16-byte vector: element-wise copies
        (3, 13, 1, 16, 96),
        (1, 7, 13, 37, 70),     # 2 chunks, the last partial; Cout over a partial tile
        (3, 8, 8, 24, 144),     # MobileNetV2-like, an exact tile
        (3, 5, 6, 200, 33),     # 7 chunks
        (1, 20, 19, 48, 520),   # several output-channel tiles
    ],
)
@pytest.mark.parametrize("stride", [1, 2])
def test_odd_shapes(platform, rng, n, h, w, c, cout, stride):
    check(platform, rng, n=n, h=h, w=w, c=c, cout=cout, strides=stride, dw_clamp=CLAMPS["relu6"])


@pytest.mark.gpu
@pytest.mark.parametrize("k,stride", [(3, 1), (5, 2), (7, 1)])
def test_every_compiled_config(rng, k, stride):
    # Tiles, passes over a resident depthwise result, channel splits (int32
    # partial sums through distributed shared memory) and persistent blocks.
    n, h, w, c, cout = 2, 11, 13, 100, 200
    x = random_input(rng, (n, h, w, c))
    q = random_params(rng, c, cout, k, CLAMPS["relu6"])
    ref = reference(x, q, strides=stride)
    configs = list(tiling.all_configs(cout, c, tiles_per_block=(0, 1, 3), itemsize=1))
    assert any(cfg.channel_splits > 1 for cfg in configs) and any(cfg.cout_tiles_per_block > 1 for cfg in configs)
    for cfg in configs:
        out = run_on("gpu", lambda x, q: jax_fcm.dw_pw_int8(x, q, strides=stride, config=cfg), x, q)
        np.testing.assert_array_equal(np.asarray(out), ref, err_msg=tiling.config_label(cfg))


def test_leading_axes_vmap_sharding_and_lowering(platform, mesh, rng):
    check(platform, rng, n=2, lead=(2,), strides=2)
    x = random_input(rng, (2, 4, 9, 9, 40))
    q = random_params(rng, 40, 24, 3)
    check_batch_transforms(platform, mesh, lambda x, q: jax_fcm.dw_pw_int8(x, q), x, q, reference(x, q),
                           "jax_fcm_dw_pw_int8")


@pytest.mark.parametrize("k,stride,dw_act,pw_act", [(3, 1, "relu6", None), (5, 2, "relu", "relu6"),
                                                     (7, 1, None, None)])
def test_quantized_pair_tracks_the_float_op(platform, rng, k, stride, dw_act, pw_act):
    # The scheme end to end: calibrate, quantize weights and input, run int8,
    # dequantize; the result is within a few output steps of the float pair.
    arr = array_maker(rng, jnp.float32)
    c, cout = 48, 40
    x, dw, pw = arr((2, 14, 14, c)), arr((k, k, 1, c), 1.0 / k), arr((1, 1, c, cout), 1.0 / np.sqrt(c))
    dwb, pwb = arr((c,), 0.5), arr((cout,), 0.5)
    acts = dict(dw_activation=dw_act, pw_activation=pw_act)
    scales = quantization.calibrate_dw_pw(x, dw, pw, dwb, pwb, strides=stride, **acts)
    q = quantization.quantize_dw_pw(dw, pw, dwb, pwb, **scales, **acts)
    xq = quantization.quantize(x, q.input_scale)
    out = run_on(platform, lambda x, q: jax_fcm.dw_pw_int8(x, q, strides=stride), xq, q)
    got = np.asarray(quantization.dequantize(out, q.output_scale))
    with jax.default_device(jax.devices("cpu")[0]):
        want = np.asarray(jax_fcm.dw_pw(x, dw, pw, dwb, pwb, strides=stride, implementation="xla",
                                        precision="highest", **acts))
    steps = np.abs(got - want) / q.output_scale
    assert steps.max() <= 4.0 and steps.mean() <= 0.5, (steps.max(), steps.mean())


def test_quantize_weights_and_clamps():
    w = np.array([[0.5, -2.0], [-1.0, 1.0]], np.float32)  # columns: output channels
    q, scales = quantization.quantize_weights(w)
    np.testing.assert_allclose(scales, [1.0 / 127, 2.0 / 127])
    np.testing.assert_array_equal(q, [[64, -127], [-127, 64]])
    assert quantization.clamp_range(None, 0.1) == (-128, 127)
    assert quantization.clamp_range("relu", 0.1) == (0, 127)
    assert quantization.clamp_range("relu6", 0.1) == (0, 60)
    assert quantization.clamp_range("relu6", 0.01) == (0, 127)
    # Half-way values round to even, as the kernels' rintf does.
    acc = jnp.array([1, 3, 5, -3, 1000], jnp.int32)
    np.testing.assert_array_equal(quantization.requantize(acc, jnp.float32(0.5), -128, 127), [0, 2, 2, -2, 127])


# A valid call (x (1, 8, 8, 40) int8, a 3x3 40 -> 24 QuantizedDwPw) and one
# change each -> the error and its message; docs/errors.md lists them
# (tests/test_dw_pw_errors.py writes it). "params.<field>" replaces one field.
_X = np.asarray(random_input(np.random.default_rng(0), (1, 8, 8, 40)))
_Q = jax.device_get(random_params(np.random.default_rng(1), 40, 24, 3))
BAD_INPUTS = [
    (dict(x=_X.astype(np.float32)), TypeError, "x must be an int8 array"),
    (dict(x=_X[0]), ValueError, "rank >= 4"),
    (dict(params={}), TypeError, "QuantizedDwPw"),
    (dict(x=_X[..., :32]), ValueError, "params.dw_kernel must have shape"),
    ({"params.pw_kernel": _Q.pw_kernel[:, :8]}, ValueError, r"params.pw_kernel must be \(Cout, C=40\)"),
    ({"params.dw_bias": _Q.dw_bias.astype(np.float32)}, TypeError, "params.dw_bias must be int32"),
    ({"params.pw_multiplier": _Q.pw_multiplier[:3]}, ValueError, r"params.pw_multiplier must have shape \(Cout,\)"),
    ({"params.pw_clamp": (10, 5)}, ValueError, "qmin <= qmax"),
    (dict(strides=3), ValueError, "strides"),
    (dict(implementation="split"), ValueError, "implementation must be one of"),
    (dict(config=(8, 8, 64)), TypeError, "config must be a jax_fcm.DwPwConfig"),
]


def call_with(change):
    return call_with_change(jax_fcm.dw_pw_int8, _X, _Q, change)


@pytest.mark.parametrize("change,error,match", BAD_INPUTS)
def test_bad_input(change, error, match):
    with pytest.raises(error, match=match):
        call_with(change)


def test_quantize_helpers_reject_what_the_scheme_lacks(rng):
    arr = array_maker(rng, jnp.float32)
    dw, pw = arr((3, 3, 1, 8)), arr((1, 1, 8, 4))
    scales = dict(input_scale=0.1, mid_scale=0.1, output_scale=0.1)
    with pytest.raises(ValueError, match="fold only"):
        quantization.quantize_dw_pw(dw, pw, **scales, dw_activation="silu")
    with pytest.raises(ValueError, match="mid_scale must be a positive"):
        quantization.quantize_dw_pw(dw, pw, **{**scales, "mid_scale": 0.0})
    with pytest.raises(ValueError, match="pw_kernel must be"):
        quantization.quantize_dw_pw(dw, arr((1, 1, 6, 4)), **scales)


def test_direct_ffi_call_with_bad_operands_is_an_error(platform, rng):
    x = random_input(rng, (1, 6, 6, 8))
    q = random_params(rng, 8, 4, 3)
    operands = (x, q.dw_kernel, q.dw_bias, q.dw_multiplier, q.pw_kernel, q.pw_bias, q.pw_multiplier)
    attrs = {name: np.int64(v) for name, v in dict(
        stride=1, pad_top=1, pad_bottom=1, pad_left=1, pad_right=1, dw_qmin=-128, dw_qmax=127, pw_qmin=-128,
        pw_qmax=127, tile_h=8, tile_w=8, tile_n=64, cout_tiles_per_block=1, channel_splits=1, tiles_per_block=0,
        channel_chunk=32).items()}
    result = jax.ShapeDtypeStruct((1, 6, 6, 4), jnp.int8)

    def with_operand(i, value):
        return operands[:i] + (value,) + operands[i + 1:]

    check_ffi_rejects(platform, "jax_fcm_dw_pw_int8", attrs, (result, operands), [
        (result, with_operand(0, x.astype(jnp.int32)), {}, "must be int8"),
        (result, with_operand(2, q.dw_bias.astype(jnp.float32)), {}, "biases must be int32"),
        (result, with_operand(3, q.dw_multiplier.astype(jnp.float16)), {}, "multipliers must be float32"),
        (result, with_operand(4, q.pw_kernel[:, :5]), {}, r"pw_kernel must be \(Cout, C=8\)"),
        (result, with_operand(6, q.pw_multiplier[:2]), {}, "must be \\(Cout,\\)"),
        (jax.ShapeDtypeStruct((1, 5, 6, 4), jnp.int8), operands, {}, "result must be"),
        (result, operands, {"pw_qmin": np.int64(-200)}, "clamp ranges"),
        (result, operands, {"stride": np.int64(3)}, "stride must be 1 or 2"),
    ])
