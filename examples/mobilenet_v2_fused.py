"""Swap a stock Flax MobileNetV2 for the fused one: same variables, same logits.

    python3 examples/mobilenet_v2_fused.py [--batch 64] [--dtype float32] [--fusion always]

The stock model (fusion="never": nn.Conv + nn.BatchNorm only) and the fused one
share one parameter tree: with fusion="auto" the depthwise -> pointwise pairs
where jax_fcm measured faster than XLA run as one kernel with BatchNorm folded
in ("always": every pair). The parameter tree is the same, so the variables (here random;
in practice a checkpoint, or torchvision weights through
flax_models.mobilenet_v2_from_torchvision) are used unchanged. Times are host
wall-clock medians around jitted calls; `python -m jax_fcm.bench` measures
device time per layer.
"""

import argparse

import jax
import jax.numpy as jnp

import flax_models
from flax_models.benchmark import median_ms


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--fusion", default="auto", choices=["auto", "always"])
    args = parser.parse_args()
    dtype = jnp.dtype(args.dtype)

    stock = flax_models.MobileNetV2(fusion="never", dtype=dtype)
    fused = flax_models.MobileNetV2(fusion=args.fusion, dtype=dtype)
    images = jax.random.normal(jax.random.key(0), (args.batch, args.size, args.size, 3), dtype)
    variables = jax.jit(stock.init)(jax.random.key(1), images[:1])  # or your checkpoint

    run_stock = jax.jit(lambda v, x: stock.apply(v, x))
    run_fused = jax.jit(lambda v, x: fused.apply(v, x))
    ref, out = run_stock(variables, images), run_fused(variables, images)
    err = float(jnp.max(jnp.abs(out.astype(jnp.float32) - ref.astype(jnp.float32))))
    print(f"{jax.devices()[0].device_kind}: max |fused - stock| logit difference {err:.2e} "
          f"(logits up to {float(jnp.max(jnp.abs(ref.astype(jnp.float32)))):.2f})")
    t_stock, t_fused = median_ms(run_stock, variables, images), median_ms(run_fused, variables, images)
    print(f"batch {args.batch} {dtype.name}: stock {t_stock:.2f} ms, fusion={args.fusion} {t_fused:.2f} ms "
          f"({t_stock / t_fused:.2f}x)")


if __name__ == "__main__":
    main()
