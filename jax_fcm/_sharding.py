"""Batch-parallel partitioning for the fused ops.

Each op maps NHWC activations (batch first) and replicated weights to NHWC
activations, pixel tiles never cross images, so a batch-sharded input can run
on each device's own shard with no communication. Without a rule, XLA's
partitioner would gather the whole batch onto every device before the custom
call. `batch_partitioned` attaches that rule (custom_partitioning: a Shardy
sharding rule that lets only the batch dimension stay sharded, and the
partition callback for the GSPMD partitioner). On one device, and inside
shard_map, the op lowers as the plain FFI call."""

from __future__ import annotations

from typing import Callable, Sequence

from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


def _batch_only(mesh, sharding, rank: int) -> NamedSharding:
    """`sharding` restricted to the leading (batch) dimension; the rest replicated."""
    spec = getattr(sharding, "spec", None)
    batch = spec[0] if spec else None
    return NamedSharding(mesh, P(batch, *([None] * (rank - 1))))


def batch_partitioned(fn: Callable, weight_ranks: Sequence[int]) -> Callable:
    """fn(x, *weights) -> y, with x and y rank 4 (NHWC) and weights of the given
    ranks; returns the same function with a batch-parallel partitioning rule."""
    wrapped = custom_partitioning(fn)

    def infer_sharding_from_operands(mesh, arg_shapes, result_shape):
        return _batch_only(mesh, arg_shapes[0].sharding, 4)

    def partition(mesh, arg_shapes, result_shape):
        batch = _batch_only(mesh, arg_shapes[0].sharding, 4)
        weights = tuple(NamedSharding(mesh, P(*([None] * r))) for r in weight_ranks)
        return mesh, fn, batch, (batch,) + weights

    # Shardy: factor n is shared by x and y; every other dimension must be
    # replicated (halos cross H and W; C and Cout are contracted / produced whole).
    names = iter(f"w{i}_{d}" for i in range(len(weight_ranks)) for d in range(8))
    weight_terms = [" ".join(next(names) for _ in range(r)) for r in weight_ranks]
    rule = f"n h w c, {', '.join(weight_terms)} -> n ho wo co"
    # Listed in order of first appearance in the rule (Shardy wants them sorted).
    replicated = ("h", "w", "c") + tuple(t for term in weight_terms for t in term.split()) + ("ho", "wo", "co")
    wrapped.def_partition(partition=partition, infer_sharding_from_operands=infer_sharding_from_operands,
                          sharding_rule=rule, need_replication_factors=replicated)
    return wrapped
