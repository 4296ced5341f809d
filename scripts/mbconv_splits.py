"""Device time of every channel split for each block of the block suite (the
data behind mbconv_config.choose_config's split rule):
  python3 -P scripts/mbconv_splits.py [N] [dtype ...]
"""

import math
import sys

import jax
import jax.numpy as jnp

import jax_fcm
from jax_fcm import _timing, bench_blocks, gpu, mbconv_config

n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
dtypes = sys.argv[2:] or ["bfloat16"]
sms = gpu.detect(jax.default_backend()).sm_count
print(f"# {jax.devices()[0].device_kind}, N = {n}; us per call (device time); * = choose_config's pick")
print("| dtype | block | " + " | ".join(f"splits {s}" for s in mbconv_config.SPLIT_CHOICES) + " |")
print("|---|---|" + "---|" * len(mbconv_config.SPLIT_CHOICES))
for dtype in dtypes:
    for block in bench_blocks.SUITE:
        ho = -(-block.hw // block.stride)
        chosen = mbconv_config.choose_config(n, ho, ho, block.cmid, block.cout, sms)
        args = [bench_blocks.make_args(block, n, jnp.dtype(dtype), seed) for seed in range(2)]
        cells = []
        for splits in mbconv_config.SPLIT_CHOICES:
            if splits > math.ceil(block.cmid / 32):
                cells.append("–")
                continue
            cfg = mbconv_config.MbconvConfig(tile_n=chosen.tile_n, channel_splits=splits)

            def f(x, we, wd, wp, be, bd, bp, cfg=cfg):
                return jax_fcm.mbconv(x, we, wd, wp, be, bd, bp, strides=block.stride, activation=block.activation,
                                      residual=block.residual, implementation="fused", config=cfg)

            try:
                us = _timing.device_time_us(f, args, iters=20)
                cells.append(f"{us:.1f}{'*' if cfg == chosen else ''}")
            except ValueError:  # does not fit in shared memory
                cells.append("n/a")
        print(f"| {dtype} | {block.name} | " + " | ".join(cells) + " |", flush=True)
