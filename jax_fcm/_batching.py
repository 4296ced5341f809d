"""vmap and batch sharding for the FFI calls: every op maps per-image
activations (batch first) and shared weights to per-image outputs."""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jax_fcm import _sharding


def batch_parallel(fn: Callable, weight_ranks: Sequence[int], activations: int = 1, outputs: int = 1) -> Callable:
    """fn(*activations, *weights) -> output(s), all activations and outputs
    rank 4 with the batch first. Returns fn with
      - a vmap rule: a vmapped axis on the activations only folds into the
        batch (one launch); batched weights run one call per element;
      - a batch-parallel sharding rule (each device runs its own batch shard)."""
    sharded = _sharding.batch_partitioned(fn, weight_ranks, activations=activations, outputs=outputs)
    all_batched = True if outputs == 1 else (True,) * outputs

    @jax.custom_batching.custom_vmap
    def call(*args):
        return sharded(*args)

    @call.def_vmap
    def _rule(axis_size, in_batched, *args):
        acts, weights = args[:activations], args[activations:]
        if not any(in_batched[activations:]):
            acts = [a if b else jnp.broadcast_to(a, (axis_size,) + a.shape) for a, b in zip(acts, in_batched)]
            n = acts[0].shape[1]
            out = call(*(a.reshape((-1,) + a.shape[2:]) for a in acts), *weights)

            def unfold(y):
                return y.reshape((axis_size, n) + y.shape[1:])

            return (unfold(out) if outputs == 1 else tuple(unfold(y) for y in out)), all_batched
        mapped = tuple(a for a, b in zip(args, in_batched) if b)

        def one(slices):
            it = iter(slices)
            return call(*(next(it) if b else a for a, b in zip(args, in_batched)))

        return lax.map(one, mapped), all_batched

    return call


def per_call_description(ffi_call: Callable, weight_ranks: Sequence[int]) -> Callable:
    """st -> batch_parallel(partial(ffi_call, st), weight_ranks), one wrapper
    per (hashable) call description st, not one per trace: the ops' FFI calls
    with their vmap and batch-sharding rules."""

    @functools.lru_cache(maxsize=None)
    def for_description(st):
        return batch_parallel(functools.partial(ffi_call, st), weight_ranks)

    return for_description
