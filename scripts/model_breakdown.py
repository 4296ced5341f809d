"""Per-kernel device time of one Flax model of the zoo under jit (inference),
grouped by kernel name, largest first: where a model's time goes, for each
fusion setting named (GPU machine).
    python3 -P scripts/model_breakdown.py --model convnext_tiny --batch 64 --fusion auto never"""

from __future__ import annotations

import argparse
import re
import sys

import jax
import jax.numpy as jnp

from flax_models.benchmark import MODELS
from jax_fcm import _timing


def family(kernel_name: str) -> str:
    """A kernel name without XLA's instance numbers and template arguments, so
    that the 18 copies of one fusion or kernel add up under one line."""
    name = re.sub(r"<.*", "", kernel_name)
    return re.sub(r"(_\d+)+$", "", name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="convnext_tiny", choices=sorted(MODELS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--fusion", nargs="+", default=["auto", "never"])
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    if jax.default_backend() != "gpu":
        print("model_breakdown.py reads GPU kernel times from a profiler trace: run it on a GPU machine",
              file=sys.stderr)
        return 2
    dtype = jnp.dtype(args.dtype)
    size = (1, args.image_size, args.image_size, 3)
    variables = jax.jit(MODELS[args.model](fusion="never", dtype=dtype).init)(jax.random.key(0),
                                                                            jnp.zeros(size, dtype))
    images = jax.random.normal(jax.random.key(1), (args.batch,) + size[1:], dtype)
    for fusion in args.fusion:
        model = MODELS[args.model](fusion=fusion, dtype=dtype)
        times = _timing.kernel_times_us(lambda v, x: model.apply(v, x), [(variables, images)], iters=10)
        grouped: dict[str, list[float]] = {}
        for name, us in times.items():
            grouped.setdefault(family(name), []).append(us)
        total = sum(times.values())
        print(f"{args.model} fusion={fusion} N={args.batch} {args.dtype}: {total / 1e3:.3f} ms in "
              f"{len(times)} kernels")
        for name, us in sorted(grouped.items(), key=lambda kv: -sum(kv[1]))[:args.top]:
            print(f"  {sum(us):9.1f} us {100 * sum(us) / total:5.1f}%  x{len(us):<3d} {name[:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
