"""Per-kernel device time of one DW->PW training step (output and all five
gradients), XLA's and jax_fcm's, and of XLA's depthwise pieces alone, at
N = 64 for each named suite layer, bfloat16 and float32 (GPU machine):
    python3 -P scripts/train_breakdown.py mv1_112_32_64 mv2_56_144_24 [--short]
--short prints the two training steps only."""

import sys

import jax
import jax.numpy as jnp

from jax_fcm import _args, _timing, bench, bench_train
from jax_fcm.reference import depthwise_conv

N = 64
TOP = 8  # kernels listed per measurement


def show(title, times):
    print(f"  {title}: total {sum(times.values()):.1f} us")
    for name, us in sorted(times.items(), key=lambda kv: -kv[1])[:TOP]:
        print(f"      {us:8.1f}  {name[:90]}")


def xla_depthwise_pieces(layer, dtype):
    """XLA's depthwise forward, input gradient and kernel gradient, each alone."""
    x, dw = bench.make_args(layer, N, dtype, 0)[:2]
    pads = _args.normalize_padding("SAME", layer.hw, layer.hw, layer.k, layer.stride)
    ho = -(-layer.hw // layer.stride)
    dy = jnp.ones((N, ho, ho, layer.c), dtype)
    zero_bias = jnp.zeros((layer.c,), dtype)

    def conv(x, dw):
        return depthwise_conv(x, dw, zero_bias, stride=layer.stride, padding=pads, activation="none", precision=None)

    def grad_x(x, dw, dy):
        return jax.vjp(lambda x: conv(x, dw), x)[1](dy)

    def grad_kernel(x, dw, dy):
        return jax.vjp(lambda dw: conv(x, dw), dw)[1](dy)

    show("xla dw forward", _timing.kernel_times_us(conv, [(x, dw)], iters=20))
    show("xla dw input gradient", _timing.kernel_times_us(grad_x, [(x, dw, dy)], iters=20))
    show("xla dw kernel gradient", _timing.kernel_times_us(grad_kernel, [(x, dw, dy)], iters=20))


def main(argv):
    names = [a for a in argv if not a.startswith("--")]
    for dtype in (jnp.bfloat16, jnp.float32):
        for layer in (layer for layer in bench.SUITE if layer.name in names):
            ho = -(-layer.hw // layer.stride)
            args = [bench_train.with_cotangent(bench.make_args(layer, N, dtype, 0), (N, ho, ho, layer.cout), dtype, 0)]
            print(f"== {layer.name} {jnp.dtype(dtype).name} N={N}")
            for title, impl in (("xla train step", "xla"), ("jax_fcm train step", None)):
                show(title, _timing.kernel_times_us(bench_train.train_step(bench.op(layer, impl)), args, iters=20))
            if "--short" not in argv:
                xla_depthwise_pieces(layer, dtype)


if __name__ == "__main__":
    main(sys.argv[1:])
