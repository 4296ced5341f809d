"""Run a model you already have on jax_fcm's kernels without changing it.

    python3 examples/existing_model_jax_fcm_convs.py [--batch 64] [--size 224] [--dtype bfloat16]

`UserMobileNet` below stands for your own code: plain Linen `nn.Conv` /
`nn.BatchNorm` layers, nothing from jax_fcm. Inside `flax_models.jax_fcm_convs()`
its depthwise convs run as `jax_fcm.depthwise` and its 1x1 and stem convs as
`jax_fcm.pointwise` / `jax_fcm.conv2d` where the planner says those kernels
measured faster than XLA's - same variables, same logits. (The fused blocks of
`flax_models` go further: BatchNorm folded, whole depthwise -> pointwise pairs
in one kernel.) Times are host wall-clock medians around jitted calls;
`python -m jax_fcm.bench --models` measures device time.
"""

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp

import flax_models
from flax_models.benchmark import median_ms


class UserMobileNet(nn.Module):
    """A MobileNetV1-style network as a user might write it."""

    widths: tuple = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (1024, 2))
    num_classes: int = 1000
    dtype: object = jnp.float32

    @nn.compact
    def __call__(self, x):
        def conv_bn(x, features, kernel, strides=1, groups=1):
            x = nn.Conv(features, (kernel, kernel), strides=strides, feature_group_count=groups, use_bias=False,
                        dtype=self.dtype)(x)
            return nn.relu(nn.BatchNorm(use_running_average=True, dtype=self.dtype)(x))

        x = conv_bn(x, 32, 3, 2)
        for features, strides in self.widths:
            x = conv_bn(x, x.shape[-1], 3, strides, groups=x.shape[-1])  # depthwise
            x = conv_bn(x, features, 1)  # pointwise
        return nn.Dense(self.num_classes, dtype=self.dtype)(jnp.mean(x, axis=(1, 2)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    args = parser.parse_args()

    model = UserMobileNet(dtype=jnp.dtype(args.dtype))
    images = jax.random.normal(jax.random.key(1), (args.batch, args.size, args.size, 3), args.dtype)
    variables = model.init(jax.random.key(0), images[:1])

    stock = jax.jit(model.apply)
    with flax_models.jax_fcm_convs():  # traced (and compiled) here: the convs run as jax_fcm ops
        mine = jax.jit(model.apply).lower(variables, images).compile()
    stock_logits, my_logits = stock(variables, images), mine(variables, images)
    diff = float(jnp.max(jnp.abs(stock_logits.astype(jnp.float32) - my_logits.astype(jnp.float32))))
    scale = float(jnp.max(jnp.abs(stock_logits.astype(jnp.float32))))
    print(f"{jax.devices()[0].device_kind}, N = {args.batch}, {args.size}x{args.size}, {args.dtype}")
    print(f"logit difference {diff:.3g} (largest logit {scale:.3g})")
    stock_ms, my_ms = median_ms(stock, variables, images), median_ms(mine, variables, images)
    print(f"stock {stock_ms:.3f} ms, under jax_fcm_convs {my_ms:.3f} ms ({stock_ms / my_ms:.2f}x)")


if __name__ == "__main__":
    main()
