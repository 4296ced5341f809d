"""BatchNorm folding: inference-mode BN after a bias-free convolution becomes a
per-output-channel scale on the kernel and a bias, so the fused kernel's
epilogue does all of it."""

from __future__ import annotations

import jax.numpy as jnp


def fold_batch_norm(kernel, bn_params, bn_stats, epsilon: float):
    """Returns (kernel * s, beta - mean * s), s = scale / sqrt(var + eps), in float32.

    kernel: HWIO with the output channel last (depthwise (k, k, 1, C) or
    pointwise (1, 1, C, Cout)); bn_params {"scale", "bias"} (either may be
    absent, as with nn.BatchNorm(use_scale=False)); bn_stats {"mean", "var"}.
    """
    mean = jnp.asarray(bn_stats["mean"], jnp.float32)
    var = jnp.asarray(bn_stats["var"], jnp.float32)
    gamma = jnp.asarray(bn_params.get("scale", jnp.ones_like(mean)), jnp.float32)
    beta = jnp.asarray(bn_params.get("bias", jnp.zeros_like(mean)), jnp.float32)
    scale = gamma * jnp.reciprocal(jnp.sqrt(var + epsilon))
    return jnp.asarray(kernel, jnp.float32) * scale, beta - mean * scale
