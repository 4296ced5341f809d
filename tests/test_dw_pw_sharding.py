"""Batch-parallel sharding of dw_pw on four host devices (conftest sets
XLA_FLAGS): under jit with a batch-sharded input each device runs its own
shard without gathering the batch; under shard_map the op runs per shard."""

from __future__ import annotations

import functools

import jax
import numpy as np
from conftest import assert_matches, random_layer
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jax_fcm

KW = dict(strides=2, padding="SAME", dw_activation="relu6", pw_activation="silu")


def layer(rng, n=8):
    return random_layer(rng, n, 9, 11, 20, 12, 3, np.float32)


def op(x, dw, pw, dwb, pwb):
    return jax_fcm.dw_pw(x, dw, pw, dwb, pwb, **KW)


def reference(args):
    cpu0 = jax.devices("cpu")[0]
    return jax.jit(op)(*jax.device_put(args, cpu0))


def test_jit_with_batch_sharded_input_keeps_the_batch_sharded(mesh, rng):
    args = layer(rng)
    x = jax.device_put(args[0], NamedSharding(mesh, P("batch")))
    weights = jax.device_put(args[1:], NamedSharding(mesh, P()))
    f = jax.jit(op)
    out = f(x, *weights)
    assert_matches(out, reference(args), "float32")
    assert out.sharding.spec[0] == "batch"
    hlo = f.lower(x, *weights).compile().as_text()
    assert "all-gather" not in hlo and "jax_fcm_dw_pw" in hlo


def test_jit_with_spatially_sharded_input_is_still_correct(mesh, rng):
    args = layer(rng, n=2)
    x = jax.device_put(args[0], NamedSharding(mesh, P(None, None, None, "batch")))  # channels split 4 ways
    out = jax.jit(op)(x, *args[1:])
    assert_matches(out, reference(args), "float32")


def test_shard_map(mesh, rng):
    args = layer(rng)
    f = jax.shard_map(op, mesh=mesh, in_specs=(P("batch"), P(), P(), P(), P()), out_specs=P("batch"))
    assert_matches(jax.jit(f)(*args), reference(args), "float32")


def test_grad_under_batch_sharding(mesh, rng):
    args = layer(rng)
    x = jax.device_put(args[0], NamedSharding(mesh, P("batch")))

    def loss(x, pw, impl):
        return (jax_fcm.dw_pw(x, args[1], pw, args[3], args[4], implementation=impl, **KW) ** 2).sum()

    grads = jax.jit(jax.grad(functools.partial(loss, impl=None), argnums=(0, 1)))(x, args[2])
    ref = jax.jit(jax.grad(functools.partial(loss, impl="xla"), argnums=(0, 1)))(args[0], args[2])
    for g, r in zip(grads, ref):
        assert_matches(g, r, "float32")
