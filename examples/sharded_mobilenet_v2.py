"""Batch-sharded fused MobileNetV2 over every device of the platform (the GPUs
of one host, or host CPU devices): the logits equal the one-device run, and
throughput on one device vs all of them.

    python3 examples/sharded_mobilenet_v2.py --batch 256 1024 [--dtype bfloat16] [--fusion always]

The images are split along the batch (jax.sharding.NamedSharding over a
"batch" mesh axis), the variables replicated; under jax.jit every device runs
its shard, the fused depthwise -> pointwise kernels included (their custom
partitioning keeps the batch sharded). Times are host wall-clock medians of
jitted calls (each call a whole batch)."""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import flax_models
from flax_models.benchmark import median_ms


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 1024], help="global batch sizes")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--fusion", default="always", choices=["auto", "always", "never"])
    parser.add_argument("--width-multiplier", type=float, default=1.0)
    args = parser.parse_args(argv)
    dtype = jnp.dtype(args.dtype)
    devices = jax.devices()
    mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
    model = flax_models.MobileNetV2(fusion=args.fusion, dtype=dtype, width_multiplier=args.width_multiplier)
    variables = jax.jit(model.init)(jax.random.key(1), jnp.zeros((1, args.size, args.size, 3), dtype))
    run = jax.jit(lambda v, x: model.apply(v, x))
    print(f"{len(devices)} x {devices[0].device_kind}; MobileNetV2 fusion={args.fusion} {dtype.name}")
    print("| global batch | 1 device ms | all devices ms | scaling | max |logit diff| |")
    print("|---|---|---|---|---|")
    local, replicated = jax.device_put(variables, devices[0]), jax.device_put(variables, NamedSharding(mesh, P()))
    for batch in args.batch:
        if batch % len(devices):
            raise SystemExit(f"global batch {batch} must be a multiple of {len(devices)} devices")
        images = jax.random.normal(jax.random.key(batch), (batch, args.size, args.size, 3), dtype)
        one = jax.device_put(images, devices[0])
        sharded = jax.device_put(images, NamedSharding(mesh, P("batch")))
        ref, out = run(local, one), run(replicated, sharded)
        assert out.sharding.spec[0] == "batch", out.sharding
        diff = float(jnp.max(jnp.abs(jnp.asarray(out, jnp.float32) - jax.device_put(jnp.asarray(ref, jnp.float32),
                                                                                      out.sharding))))
        t_one = median_ms(run, local, one, repeats=10)
        t_all = median_ms(run, replicated, sharded, repeats=10)
        print(f"| {batch} | {t_one:.2f} | {t_all:.2f} | {t_one / t_all:.2f}x | {diff:.2e} |")


if __name__ == "__main__":
    main()
