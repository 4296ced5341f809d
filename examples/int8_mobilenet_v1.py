"""Run a trained Flax MobileNetV1 in int8: convert, calibrate, compare.

    python3 examples/int8_mobilenet_v1.py [--batch 64] [--size 224] [--calibration 32]

flax_models.quantized folds each separable block's BatchNorm into its
weights, quantizes them per output channel, calibrates the activation scales
on sample images, and chains the 13 blocks as jax_fcm.dw_pw_int8 kernels
(int8 from the stem's output to the last block). The variables here are
random with BatchNorm statistics made non-trivial; in practice, a trained
checkpoint and a few hundred real images for calibration. Times are host
wall-clock medians around jitted calls; `python -m jax_fcm.bench --int8-model`
measures device time.
"""

import argparse

import jax
import jax.numpy as jnp

import flax_models
from flax_models import quantized
from flax_models.benchmark import median_ms


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--calibration", type=int, default=16, help="images used to calibrate the scales")
    parser.add_argument("--width-multiplier", type=float, default=1.0)
    args = parser.parse_args()

    model = flax_models.MobileNetV1(fusion="never", width_multiplier=args.width_multiplier)
    images = jax.random.normal(jax.random.key(0), (args.batch, args.size, args.size, 3))
    variables = jax.jit(model.init)(jax.random.key(1), images[:1])  # or your checkpoint
    # Stand-in for trained BatchNorm statistics (fresh ones are mean 0, variance 1).
    keys = iter(jax.random.split(jax.random.key(2), 1000))
    variables = {"params": variables["params"], "batch_stats": jax.tree_util.tree_map_with_path(
        lambda path, a: (jax.random.uniform(next(keys), a.shape, minval=0.5, maxval=2.0) if path[-1].key == "var"
                         else 0.1 * jax.random.normal(next(keys), a.shape)), variables["batch_stats"])}

    calibration = jax.random.normal(jax.random.key(3), (args.calibration, args.size, args.size, 3))
    qnet = quantized.quantize_mobilenet_v1(model, variables, calibration)

    run_float = jax.jit(lambda v, x: model.apply(v, x))
    run_int8 = jax.jit(quantized.apply_quantized_mobilenet_v1)
    ref, out = run_float(variables, images), run_int8(qnet, images)
    cosine = jnp.sum(ref * out, -1) / jnp.linalg.norm(ref, axis=-1) / jnp.linalg.norm(out, axis=-1)
    agree = float(jnp.mean(jnp.argmax(ref, -1) == jnp.argmax(out, -1)))
    print(f"{jax.devices()[0].device_kind}: int8 vs float32 logits: cosine min {float(cosine.min()):.4f}, "
          f"top-1 agreement {agree:.2f}")
    t_float, t_int8 = median_ms(run_float, variables, images), median_ms(run_int8, qnet, images)
    print(f"batch {args.batch}: float32 {t_float:.2f} ms, int8 {t_int8:.2f} ms ({t_float / t_int8:.2f}x)")


if __name__ == "__main__":
    main()
