"""Every bad input gets a clear Python error naming the argument, before any launch."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import jax_fcm


def layer(n=1, h=8, w=8, c=16, cout=8, k=3, dtype=jnp.float32):
    return (jnp.ones((n, h, w, c), dtype), jnp.ones((k, k, 1, c), dtype), jnp.ones((1, 1, c, cout), dtype))


@pytest.mark.parametrize(
    "change,error,match",
    [
        (dict(x=jnp.ones((8, 8, 16))), ValueError, "x must be NHWC"),
        (dict(x=jnp.ones((1, 8, 8, 16), jnp.int32)), TypeError, "x must have dtype"),
        (dict(x=jnp.ones((1, 8, 8, 16), jnp.float16)), TypeError, "dw_kernel has dtype"),
        (dict(x=[[1.0]]), TypeError, "x must be an array"),
        (dict(dw_kernel=jnp.ones((3, 3, 1, 15))), ValueError, r"dw_kernel must have shape \(k, k, 1, C\)"),
        (dict(dw_kernel=jnp.ones((3, 3, 16, 1))), ValueError, r"dw_kernel must have shape \(k, k, 1, C\)"),
        (dict(dw_kernel=jnp.ones((3, 5, 1, 16))), ValueError, "dw_kernel must have shape"),
        (dict(dw_kernel=jnp.ones((4, 4, 1, 16))), ValueError, "dw_kernel size k must be one of"),
        (dict(dw_kernel=jnp.ones((9, 9, 1, 16))), ValueError, "dw_kernel size k must be one of"),
        (dict(pw_kernel=jnp.ones((1, 1, 15, 8))), ValueError, r"pw_kernel must have shape \(1, 1, C, Cout\)"),
        (dict(pw_kernel=jnp.ones((3, 3, 16, 8))), ValueError, "pw_kernel must have shape"),
        (dict(pw_kernel=jnp.ones((16, 8))), ValueError, "pw_kernel must have shape"),
        (dict(pw_kernel=jnp.ones((1, 1, 16, 8), jnp.bfloat16)), TypeError, "pw_kernel has dtype bfloat16"),
        (dict(dw_bias=jnp.ones((8,))), ValueError, r"dw_bias must have shape \(C,\)"),
        (dict(pw_bias=jnp.ones((16,))), ValueError, r"pw_bias must have shape \(Cout,\)"),
        (dict(pw_bias=jnp.ones((8,), jnp.float16)), TypeError, "pw_bias has dtype float16"),
        (dict(strides=3), ValueError, "strides must be 1 or 2"),
        (dict(strides=(1, 2)), ValueError, "strides must be 1 or 2"),
        (dict(strides="2"), ValueError, "strides must be an int"),
        (dict(padding="FULL"), ValueError, "padding must be 'SAME', 'VALID'"),
        (dict(padding=((1, 1), (1, -1))), ValueError, "padding must be non-negative"),
        (dict(padding=((1, 1, 1), (1, 1))), ValueError, "padding must be"),
        (dict(x=jnp.ones((1, 2, 2, 16)), padding="VALID"), ValueError, "leaves no output pixels"),
        (dict(dw_activation="tanh"), ValueError, "dw_activation must be None or one of"),
        (dict(pw_activation="gelu"), ValueError, "pw_activation='gelu' is ambiguous"),
        (dict(pw_activation=3), TypeError, "pw_activation must be None or one of"),
        (dict(precision="ultra"), ValueError, "precision must be"),
        (dict(implementation="cudnn"), ValueError, "implementation must be one of"),
        (dict(config=(8, 8, 64)), TypeError, "config must be a jax_fcm.DwPwConfig"),
    ],
)
def test_bad_input(change, error, match):
    x, dw, pw = layer()
    kwargs = dict(x=x, dw_kernel=dw, pw_kernel=pw)
    kwargs.update(change)
    with pytest.raises(error, match=match):
        jax_fcm.dw_pw(**kwargs)


def test_bad_config_values():
    with pytest.raises(ValueError, match="tile_n must be one of"):
        jax_fcm.DwPwConfig(tile_n=48)
    with pytest.raises(ValueError, match="tile_h x tile_w"):
        jax_fcm.DwPwConfig(tile_h=16)


def test_bad_config_tile_for_height():
    with pytest.raises(ValueError, match="tile_n must be one of .* for tile_h=4"):
        jax_fcm.DwPwConfig(tile_h=4, tile_n=32)
    with pytest.raises(ValueError, match="cout_tiles_per_block must be a positive int"):
        jax_fcm.DwPwConfig(cout_tiles_per_block=0)


def test_numpy_inputs_accepted():
    x, dw, pw = (np.asarray(a) for a in layer())
    assert jax_fcm.dw_pw(x, dw, pw).shape == (1, 8, 8, 8)
