"""Randomized sweep (hypothesis, derandomized and bounded for CI) over shapes,
dtypes, kernel sizes, strides, paddings, activations and tile configurations,
against the float32 lax reference."""

from __future__ import annotations

import numpy as np
from conftest import assert_matches, f32_reference, random_layer, run_on, tolerance_key
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import jax_fcm
from jax_fcm import _args
from jax_fcm.tiling import all_configs

DTYPES = ["float32", "bfloat16", "float16"]


@st.composite
def layers(draw):
    k = draw(st.sampled_from([3, 5, 7]))
    stride = draw(st.sampled_from([1, 2]))
    h, w = draw(st.integers(1, 14)), draw(st.integers(1, 14))
    padding = draw(st.one_of(st.sampled_from(["SAME", "VALID"]),
                             st.tuples(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                                       st.tuples(st.integers(0, 3), st.integers(0, 3)))))
    pads = _args.normalize_padding(padding, h, w, k, stride)
    assume(_args.output_size(h, k, stride, pads[0]) >= 1 and _args.output_size(w, k, stride, pads[1]) >= 1)
    c, cout = draw(st.integers(1, 72)), draw(st.integers(1, 72))
    return dict(n=draw(st.integers(1, 3)), h=h, w=w, c=c, cout=cout, k=k, stride=stride, padding=padding,
                dtype=draw(st.sampled_from(DTYPES)),
                dw_activation=draw(st.sampled_from(jax_fcm.ACTIVATION_NAMES)),
                pw_activation=draw(st.sampled_from(jax_fcm.ACTIVATION_NAMES)),
                config=draw(st.sampled_from(list(all_configs(cout, c)))),
                seed=draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(layer=layers())
def test_random_layers(platform, layer):
    rng = np.random.default_rng(layer["seed"])
    args = random_layer(rng, layer["n"], layer["h"], layer["w"], layer["c"], layer["cout"], layer["k"],
                        layer["dtype"])
    kw = dict(strides=layer["stride"], padding=layer["padding"], dw_activation=layer["dw_activation"],
              pw_activation=layer["pw_activation"])
    out = run_on(platform, lambda *a: jax_fcm.dw_pw(*a, config=layer["config"], **kw), *args)
    assert_matches(out, f32_reference(*args, **kw), tolerance_key(layer["dtype"], platform))
