"""Runs one layer of the benchmark suite (or, by name, one MBConv block of the
block suite or one layer of the depthwise, pointwise or PW -> PW suites) a
few times without the JAX profiler, for Nsight Compute:
  ncu -k regex:dw_pw_fused -c 1 python3 -P scripts/profile_layer.py mv1_112_32_64 64 bfloat16
  ncu -k regex:mbconv -c 1 python3 -P scripts/profile_layer.py mv2_56_24_24 64 bfloat16
  ncu -k regex:pw_pw -c 1 python3 -P scripts/profile_layer.py convnext_56_96_384_96 64 bfloat16
"""

import sys

import jax
import jax.numpy as jnp

from jax_fcm import bench, bench_blocks, bench_depthwise, bench_pointwise, bench_pw_pw

name, n, dtype = sys.argv[1], int(sys.argv[2]), jnp.dtype(sys.argv[3])
suite = {layer.name: (bench, layer) for layer in bench.SUITE}
for module in (bench_blocks, bench_depthwise, bench_pointwise, bench_pw_pw):
    suite.update({entry.name: (module, entry) for entry in module.SUITE})
module, item = suite[name]
args = module.make_args(item, n, dtype, 0)
f = jax.jit(module.op(item, None))
for _ in range(3):
    jax.block_until_ready(f(*args))
print("ran", name, n, dtype.name)
