"""Randomized sweeps (hypothesis, derandomized and bounded for CI) of the
standalone ops - jax_fcm.depthwise, pointwise, pw_pw, pw_dw and conv2d - over shapes,
dtypes, windows, strides, paddings and activations, each against its float32
lax reference with the tolerances of its own test module (the fused DW -> PW
op has its sweep in test_dw_pw_random.py); and of jax_fcm.dw_pw_int8 against
its integer lax reference, bit for bit."""

from __future__ import annotations

import numpy as np
import test_conv2d
import test_depthwise
import test_dw_pw_int8
import test_pointwise
import test_pw_dw
import test_pw_pw
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import jax_fcm
from jax_fcm import _args

DTYPES = ["float32", "bfloat16", "float16"]
SWEEP = settings(max_examples=40, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

activations = st.sampled_from(jax_fcm.ACTIVATION_NAMES)
seeds = st.integers(0, 2**31 - 1)
paddings = st.one_of(st.sampled_from(["SAME", "VALID"]),
                     st.tuples(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                               st.tuples(st.integers(0, 3), st.integers(0, 3))))


def has_output(h, w, kh, kw, strides, padding) -> bool:
    """Whether the window leaves at least one output pixel (else every op rejects the call)."""
    try:
        _args.dense_window(strides, padding, h, w, kh, kw)
    except ValueError:
        return False
    return True


@SWEEP
@given(n=st.integers(1, 3), h=st.integers(1, 20), w=st.integers(1, 20), c=st.integers(1, 72),
       k=st.sampled_from([3, 5, 7]), stride=st.sampled_from([1, 2]), padding=paddings,
       dtype=st.sampled_from(DTYPES), activation=activations, seed=seeds)
def test_random_depthwise(platform, n, h, w, c, k, stride, padding, dtype, activation, seed):
    assume(has_output(h, w, k, k, stride, padding))
    test_depthwise.check(platform, np.random.default_rng(seed), n=n, h=h, w=w, c=c, k=k, dtype=dtype, strides=stride,
                         padding=padding, activation=activation)


@SWEEP
@given(n=st.integers(1, 3), h=st.integers(1, 12), w=st.integers(1, 12), cin=st.integers(1, 200),
       cout=st.integers(1, 200), dtype=st.sampled_from(DTYPES), activation=activations, seed=seeds)
def test_random_pointwise(platform, n, h, w, cin, cout, dtype, activation, seed):
    test_pointwise.check(platform, np.random.default_rng(seed), n=n, h=h, w=w, cin=cin, cout=cout, dtype=dtype,
                         activation=activation)


@SWEEP
@given(n=st.integers(1, 3), h=st.integers(1, 12), w=st.integers(1, 12), cin=st.integers(1, 96),
       hidden=st.integers(1, 400), cout=st.integers(1, 160), dtype=st.sampled_from(DTYPES),
       pw1_activation=activations, pw2_activation=activations, seed=seeds)
def test_random_pw_pw(platform, n, h, w, cin, hidden, cout, dtype, pw1_activation, pw2_activation, seed):
    test_pw_pw.check(platform, np.random.default_rng(seed), n=n, h=h, w=w, cin=cin, hidden=hidden, cout=cout,
                     dtype=dtype, pw1_activation=pw1_activation, pw2_activation=pw2_activation)


@SWEEP
@given(n=st.integers(1, 3), h=st.integers(1, 20), w=st.integers(1, 20), cin=st.integers(1, 72),
       cmid=st.integers(1, 150), k=st.sampled_from([3, 5, 7]), stride=st.sampled_from([1, 2]), padding=paddings,
       dtype=st.sampled_from(DTYPES), pw_activation=activations, dw_activation=activations, seed=seeds)
def test_random_pw_dw(platform, n, h, w, cin, cmid, k, stride, padding, dtype, pw_activation, dw_activation, seed):
    assume(has_output(h, w, k, k, stride, padding))
    test_pw_dw.check(platform, np.random.default_rng(seed), n=n, h=h, w=w, cin=cin, cmid=cmid, k=k, dtype=dtype,
                     strides=stride, padding=padding, pw_activation=pw_activation, dw_activation=dw_activation)


@SWEEP
@given(n=st.integers(1, 3), h=st.integers(1, 20), w=st.integers(1, 20), cin=st.integers(1, 40),
       cout=st.integers(1, 72), kh=st.integers(1, 5), kw=st.integers(1, 5),
       strides=st.tuples(st.integers(1, 4), st.integers(1, 4)), padding=paddings, dtype=st.sampled_from(DTYPES),
       activation=activations, seed=seeds)
def test_random_conv2d(platform, n, h, w, cin, cout, kh, kw, strides, padding, dtype, activation, seed):
    assume(has_output(h, w, kh, kw, strides, padding))
    test_conv2d.check(platform, np.random.default_rng(seed), n=n, h=h, w=w, cin=cin, cout=cout, window=(kh, kw),
                      dtype=dtype, strides=strides, padding=padding, activation=activation)


clamps = st.sampled_from(list(test_dw_pw_int8.CLAMPS.values()))


@SWEEP
@given(n=st.integers(1, 3), h=st.integers(1, 20), w=st.integers(1, 20), c=st.integers(1, 150),
       cout=st.integers(1, 200), k=st.sampled_from([3, 5, 7]), stride=st.sampled_from([1, 2]), padding=paddings,
       dw_clamp=clamps, pw_clamp=clamps, seed=seeds)
def test_random_dw_pw_int8(platform, n, h, w, c, cout, k, stride, padding, dw_clamp, pw_clamp, seed):
    assume(has_output(h, w, k, k, stride, padding))
    test_dw_pw_int8.check(platform, np.random.default_rng(seed), n=n, h=h, w=w, c=c, cout=cout, k=k, strides=stride,
                          padding=padding, dw_clamp=dw_clamp, pw_clamp=pw_clamp)
