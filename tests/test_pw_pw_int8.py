"""pw_pw_int8 (two fused int8 1x1 convolutions) against the same integer
math in lax ops, bit for bit: clamp ranges (ReLU, ReLU6), odd shapes, every
output tile of the CUDA kernel and the widest input, on the CPU handler and
the CUDA kernel; the quantization helpers against the float op; vmap,
sharding and errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import array_maker, call_with_change, check_batch_transforms, check_ffi_rejects, run_on

import jax_fcm
from jax_fcm import _ffi, pw_pw_int8_op, quantization
from jax_fcm.quantization import QuantizedPwPw

CLAMPS = {"none": (-128, 127), "relu": (0, 127), "relu6": (0, 50)}


def random_params(rng, cin, hidden, cout, pw1_clamp=(-128, 127), pw2_clamp=(-128, 127)) -> QuantizedPwPw:
    """Full-range int8 weights, int32 biases and multipliers that spread the
    requantized values over the int8 range (some saturate)."""
    sum1 = np.sqrt(cin) * 73.0 * 73.0  # standard deviation of a sum of full-range products
    sum2 = np.sqrt(hidden) * 60.0 * 73.0
    return QuantizedPwPw(
        pw1_kernel=jnp.asarray(rng.integers(-127, 128, (hidden, cin), dtype=np.int8)),
        pw2_kernel=jnp.asarray(rng.integers(-127, 128, (cout, hidden), dtype=np.int8)),
        pw1_bias=jnp.asarray(rng.integers(-2 * int(sum1), 2 * int(sum1), hidden, dtype=np.int32)),
        pw2_bias=jnp.asarray(rng.integers(-2 * int(sum2), 2 * int(sum2), cout, dtype=np.int32)),
        pw1_multiplier=jnp.asarray(rng.uniform(20, 80, hidden) / sum1, jnp.float32),
        pw2_multiplier=jnp.asarray(rng.uniform(40, 160, cout) / sum2, jnp.float32),
        pw1_clamp=pw1_clamp, pw2_clamp=pw2_clamp)


def random_input(rng, shape):
    return jnp.asarray(rng.integers(-128, 128, shape, dtype=np.int8))


def reference(x, q):
    with jax.default_device(jax.devices("cpu")[0]):
        return np.asarray(jax_fcm.pw_pw_int8(np.asarray(x), jax.device_get(q), implementation="xla"))


def check(platform, rng, *, n=3, h=13, w=7, cin=40, hidden=96, cout=24, lead=(), pw1_clamp=(-128, 127),
          pw2_clamp=(-128, 127)):
    x = random_input(rng, tuple(lead) + (n, h, w, cin))
    q = random_params(rng, cin, hidden, cout, pw1_clamp, pw2_clamp)
    out = run_on(platform, lambda x, q: jax_fcm.pw_pw_int8(x, q, implementation="fused"), x, q)
    assert out.dtype == jnp.int8
    ref = reference(x, q)
    np.testing.assert_array_equal(np.asarray(out), ref)
    return ref


@pytest.mark.parametrize("act1", list(CLAMPS))
@pytest.mark.parametrize("act2", list(CLAMPS))
def test_clamp_ranges(platform, rng, act1, act2):
    ref = check(platform, rng, pw1_clamp=CLAMPS[act1], pw2_clamp=CLAMPS[act2])
    lo, hi = CLAMPS[act2]
    assert ref.min() == lo and ref.max() == hi  # the clamp is reached: the test sees saturation


@pytest.mark.parametrize(
    "n,h,w,cin,hidden,cout",
    [
        (1, 1, 1, 1, 1, 1),
        (1, 9, 17, 3, 18, 5),        # channel counts off the 16-byte vector and the 4-value bias copies
        (3, 13, 1, 16, 64, 32),      # one exact intermediate step; output tile 32
        (1, 7, 13, 37, 70, 64),      # two steps, the last partial; output tile 64
        (3, 8, 8, 24, 144, 96),      # MobileNetV2's 24 -> 144 expansion feeding a 1x1; output tile 96
        (3, 5, 6, 144, 24, 144),     # its projection then the next block's expansion; two output tiles
        (1, 20, 19, 48, 192, 128),   # pixels over several 128-row blocks, the last partial; output tile 128
        (1, 6, 5, 96, 384, 96),      # ConvNeXt-like MLP
        (1, 4, 4, 384, 40, 520),     # the widest input; five output tiles
    ],
)
def test_odd_shapes(platform, rng, n, h, w, cin, hidden, cout):
    check(platform, rng, n=n, h=h, w=w, cin=cin, hidden=hidden, cout=cout, pw1_clamp=CLAMPS["relu6"])


@pytest.mark.gpu
def test_every_output_tile(rng):
    # The CUDA kernel's output tiles (pw_pw_tile_n: 32, 64, 96, 128 for these Cout).
    native = _ffi.native()
    tiles = {cout: native.pw_pw_tile_n(40, cout) for cout in (32, 64, 96, 128)}
    assert sorted(tiles.values()) == [32, 64, 96, 128], tiles
    for cout in tiles:
        check("gpu", rng, n=2, h=9, w=11, cin=40, hidden=200, cout=cout, pw1_clamp=CLAMPS["relu"])


def test_leading_axes_vmap_sharding_and_lowering(platform, mesh, rng):
    check(platform, rng, n=2, lead=(2,))
    x = random_input(rng, (2, 4, 9, 9, 40))
    q = random_params(rng, 40, 64, 24)
    check_batch_transforms(platform, mesh, lambda x, q: jax_fcm.pw_pw_int8(x, q), x, q, reference(x, q),
                           "jax_fcm_pw_pw_int8")


def test_default_falls_back_past_the_widest_input(rng):
    cin = pw_pw_int8_op.MAX_CIN + 8
    x = random_input(rng, (1, 3, 3, cin))
    q = random_params(rng, cin, 32, 16)
    text = jax.jit(lambda x, q: jax_fcm.pw_pw_int8(x, q)).lower(x, q).as_text()
    assert "jax_fcm_pw_pw_int8" not in text
    np.testing.assert_array_equal(np.asarray(jax_fcm.pw_pw_int8(x, q)), reference(x, q))
    with pytest.raises(ValueError, match=f"takes Cin <= {pw_pw_int8_op.MAX_CIN}"):
        jax_fcm.pw_pw_int8(x, q, implementation="fused")


@pytest.mark.parametrize("act1,act2", [("relu6", None), ("relu", "relu6"), (None, None)])
def test_quantized_pair_tracks_the_float_op(platform, rng, act1, act2):
    # The scheme end to end: calibrate, quantize weights and input, run int8,
    # dequantize; the result is within a few output steps of the float pair.
    arr = array_maker(rng, jnp.float32)
    cin, hidden, cout = 48, 144, 40
    x = arr((2, 14, 14, cin))
    w1, w2 = arr((1, 1, cin, hidden), 1.0 / np.sqrt(cin)), arr((1, 1, hidden, cout), 1.0 / np.sqrt(hidden))
    b1, b2 = arr((hidden,), 0.5), arr((cout,), 0.5)
    acts = dict(pw1_activation=act1, pw2_activation=act2)
    scales = quantization.calibrate_pw_pw(x, w1, w2, b1, b2, **acts)
    q = quantization.quantize_pw_pw(w1, w2, b1, b2, **scales, **acts)
    xq = quantization.quantize(x, q.input_scale)
    out = run_on(platform, lambda x, q: jax_fcm.pw_pw_int8(x, q), xq, q)
    got = np.asarray(quantization.dequantize(out, q.output_scale))
    with jax.default_device(jax.devices("cpu")[0]):
        want = np.asarray(jax_fcm.pw_pw(x, w1, w2, b1, b2, implementation="xla", precision="highest", **acts))
    steps = np.abs(got - want) / q.output_scale
    assert steps.max() <= 4.0 and steps.mean() <= 0.5, (steps.max(), steps.mean())


# A valid call (x (1, 8, 8, 40) int8, a 40 -> 64 -> 24 QuantizedPwPw) and one
# change each -> the error and its message; docs/errors.md lists them
# (tests/test_dw_pw_errors.py writes it). "params.<field>" replaces one field.
_X = np.asarray(random_input(np.random.default_rng(0), (1, 8, 8, 40)))
_Q = jax.device_get(random_params(np.random.default_rng(1), 40, 64, 24))
BAD_INPUTS = [
    (dict(x=_X.astype(np.float32)), TypeError, "x must be an int8 array"),
    (dict(x=_X[0]), ValueError, "rank >= 4"),
    (dict(params={}), TypeError, "QuantizedPwPw"),
    (dict(x=_X[..., :32]), ValueError, r"params.pw1_kernel must be \(hidden, Cin=32\)"),
    ({"params.pw2_kernel": _Q.pw2_kernel[:, :8]}, ValueError, r"params.pw2_kernel must be \(Cout, hidden=64\)"),
    ({"params.pw1_bias": _Q.pw1_bias.astype(np.float32)}, TypeError, "params.pw1_bias must be int32"),
    ({"params.pw2_multiplier": _Q.pw2_multiplier[:3]}, ValueError,
     r"params.pw2_multiplier must have shape \(Cout,\)"),
    ({"params.pw1_clamp": (10, 5)}, ValueError, "qmin <= qmax"),
    (dict(implementation="kernel"), ValueError, "implementation must be one of"),
]


def call_with(change):
    return call_with_change(jax_fcm.pw_pw_int8, _X, _Q, change)


@pytest.mark.parametrize("change,error,match", BAD_INPUTS)
def test_bad_input(change, error, match):
    with pytest.raises(error, match=match):
        call_with(change)


def test_quantize_helpers_reject_what_the_scheme_lacks(rng):
    arr = array_maker(rng, jnp.float32)
    w1, w2 = arr((1, 1, 8, 16)), arr((1, 1, 16, 4))
    scales = dict(input_scale=0.1, mid_scale=0.1, output_scale=0.1)
    with pytest.raises(ValueError, match="fold only"):
        quantization.quantize_pw_pw(w1, w2, **scales, pw1_activation="gelu_exact")
    with pytest.raises(ValueError, match="output_scale must be a positive"):
        quantization.quantize_pw_pw(w1, w2, **{**scales, "output_scale": -1.0})
    with pytest.raises(ValueError, match=r"pw2_kernel must be \(1, 1, hidden=16, Cout\)"):
        quantization.quantize_pw_pw(w1, arr((1, 1, 6, 4)), **scales)


def test_direct_ffi_call_with_bad_operands_is_an_error(platform, rng):
    x = random_input(rng, (1, 6, 6, 8))
    q = random_params(rng, 8, 16, 4)
    operands = (x, q.pw1_kernel, q.pw1_bias, q.pw1_multiplier, q.pw2_kernel, q.pw2_bias, q.pw2_multiplier)
    attrs = {name: np.int64(v) for name, v in dict(pw1_qmin=-128, pw1_qmax=127, pw2_qmin=-128, pw2_qmax=127).items()}
    result = jax.ShapeDtypeStruct((1, 6, 6, 4), jnp.int8)

    def with_operand(i, value):
        return operands[:i] + (value,) + operands[i + 1:]

    check_ffi_rejects(platform, "jax_fcm_pw_pw_int8", attrs, (result, operands), [
        (result, with_operand(0, x.astype(jnp.int32)), {}, "must be int8"),
        (result, with_operand(2, q.pw1_bias.astype(jnp.float32)), {}, "biases must be int32"),
        (result, with_operand(3, q.pw1_multiplier.astype(jnp.float16)), {}, "multipliers must be float32"),
        (result, with_operand(1, q.pw1_kernel[:, :5]), {}, r"pw1_kernel must be \(hidden, Cin=8\)"),
        (result, with_operand(4, q.pw2_kernel[:, :5]), {}, r"pw2_kernel must be \(Cout, hidden=16\)"),
        (result, with_operand(6, q.pw2_multiplier[:2]), {}, "must be \\(Cout,\\)"),
        (jax.ShapeDtypeStruct((1, 5, 6, 4), jnp.int8), operands, {}, "result must be"),
        (result, operands, {"pw1_qmax": np.int64(200)}, "clamp ranges"),
    ])
