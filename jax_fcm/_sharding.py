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


def batch_partitioned(fn: Callable, weight_ranks: Sequence[int], activations: int = 1, outputs: int = 1) -> Callable:
    """fn(*activations, *weights) -> output or tuple of outputs, where the
    activations and outputs are rank 4 with the batch first (NHWC, or any
    per-image array) and the weights have the given ranks; returns the same
    function with a batch-parallel partitioning rule."""
    wrapped = custom_partitioning(fn)

    def out_shardings(mesh, arg_shapes):
        batch = _batch_only(mesh, arg_shapes[0].sharding, 4)
        return batch if outputs == 1 else (batch,) * outputs

    def infer_sharding_from_operands(mesh, arg_shapes, result_shape):
        return out_shardings(mesh, arg_shapes)

    def partition(mesh, arg_shapes, result_shape):
        batch = _batch_only(mesh, arg_shapes[0].sharding, 4)
        weights = tuple(NamedSharding(mesh, P(*([None] * r))) for r in weight_ranks)
        return mesh, fn, out_shardings(mesh, arg_shapes), (batch,) * activations + weights

    # Shardy: factor n is shared by every activation and output; every other
    # dimension must be replicated (halos cross H and W; channels are
    # contracted or produced whole).
    names = iter(f"w{i}_{d}" for i in range(len(weight_ranks)) for d in range(8))
    weight_terms = [" ".join(next(names) for _ in range(r)) for r in weight_ranks]
    activation_terms = [f"n h{i} w{i} c{i}" for i in range(activations)]
    output_terms = [f"n ho{i} wo{i} co{i}" for i in range(outputs)]
    rule = f"{', '.join(activation_terms + weight_terms)} -> {', '.join(output_terms)}"
    # Listed in order of first appearance in the rule (Shardy wants them sorted).
    replicated = tuple(t for term in activation_terms + weight_terms + output_terms for t in term.split() if t != "n")
    wrapped.def_partition(partition=partition, infer_sharding_from_operands=infer_sharding_from_operands,
                          sharding_rule=rule, need_replication_factors=replicated)
    return wrapped
