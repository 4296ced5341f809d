"""Times one Flax model of the zoo under several fusion settings, to find which
choice makes a model slower or faster than the stock one (device time on a
GPU, host wall-clock elsewhere).

  python3 -P scripts/model_plans.py --model mobilevit_s --batch 64 --dtype bfloat16 \
      --plan never auto always split

A plan is "never", "auto", "always", or one value for every DW->PW pair:
"split" (jax_fcm.depthwise + XLA 1x1), "pair" (the fused pair kernel),
"block" (the whole-block kernel where it fits) or "stock" (the Flax layers).
For convnext_tiny, "auto-no-pw-pw" is "auto" with every block's MLP kept off
the fused jax_fcm.pw_pw kernel (its expansion through jax_fcm.pointwise where
the planner picks that): the A/B for the MLP fusion at model level."""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp

from flax_models import convnext
from flax_models.benchmark import MODELS
from jax_fcm import bench, model_layers

PER_PAIR = {"split": "split", "pair": True, "block": "block", "stock": False}


def fusion_value(plan: str, model: str, image_size: int):
    """--plan entry -> the model's fusion argument."""
    if plan == "auto-no-pw-pw":
        return "auto"
    if plan in ("never", "auto", "always"):
        return plan
    if plan not in PER_PAIR:
        raise SystemExit(f"unknown plan {plan!r}; choose never, auto, always or one of {sorted(PER_PAIR)}")
    if model not in model_layers.MODELS:
        raise SystemExit(f"{model} takes only never, auto or always")
    return (PER_PAIR[plan],) * len(model_layers.dw_pw_pairs(model, image_size, 1.0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mobilevit_s", choices=sorted(MODELS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--plan", nargs="+", default=["never", "auto", "split"])
    args = parser.parse_args(argv)
    dtype = jnp.dtype(args.dtype)
    _, timer = bench.make_timer(args.iters)
    stock = MODELS[args.model](fusion="never", dtype=dtype)
    size = (1, args.image_size, args.image_size, 3)
    variables = jax.jit(stock.init)(jax.random.key(0), jnp.zeros(size, dtype))
    images = jax.random.normal(jax.random.key(1), (args.batch,) + size[1:], dtype)
    print(f"{args.model}, N = {args.batch}, {args.dtype}, {jax.devices()[0].device_kind}")
    times = {}
    for plan in args.plan:
        model = MODELS[args.model](fusion=fusion_value(plan, args.model, args.image_size), dtype=dtype)
        # The block asks convnext.mlp_as_pw_pw at trace time; for this plan it answers "no".
        mlp_as_pw_pw = convnext.mlp_as_pw_pw
        if plan == "auto-no-pw-pw":
            convnext.mlp_as_pw_pw = lambda *a: False
        try:
            times[plan] = timer(lambda v, x, m=model: m.apply(v, x), [(variables, images)]) / 1e3
        finally:
            convnext.mlp_as_pw_pw = mlp_as_pw_pw
        ratio = times[plan] / times["never"] if "never" in times else float("nan")
        print(f"  {plan:8s} {times[plan]:8.3f} ms  ({ratio:.2f}x the stock time)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
