"""Same-run A/B of dw_pw's training step: the depthwise backward kernel
against the lax backward (both after the same fused forward), and XLA."""
import sys

import jax.numpy as jnp

from jax_fcm import _timing, bench, bench_train, depthwise_backward

layers = [layer for layer in bench.SUITE if not sys.argv[1:] or layer.name in sys.argv[1:]]
kernel_supported = depthwise_backward.supported
for dtype in (jnp.bfloat16, jnp.float32):
    for layer in layers:
        n, ho = 64, -(-layer.hw // layer.stride)
        args = [bench_train.with_cotangent(bench.make_args(layer, n, dtype, s), (n, ho, ho, layer.cout), dtype, s)
                for s in range(2)]
        times = {}
        for name, impl, use_kernel in (("kernel", None, True), ("lax", None, False), ("xla", "xla", True)):
            depthwise_backward.supported = kernel_supported if use_kernel else (lambda k, padding: False)
            times[name] = _timing.device_time_us(bench_train.train_step(bench.op(layer, impl)), args)
        depthwise_backward.supported = kernel_supported
        print(f"{jnp.dtype(dtype).name} {layer.name}: kernel bwd {times['kernel']:.1f} us, lax bwd {times['lax']:.1f} us, "
              f"xla {times['xla']:.1f} us", flush=True)
