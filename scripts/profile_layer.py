"""Runs one layer of the benchmark suite a few times without the JAX profiler,
for Nsight Compute:  ncu -k regex:dw_pw_fused -c 1 python3 -P scripts/profile_layer.py mv1_112_32_64 64 bfloat16
"""

import sys

import jax
import jax.numpy as jnp

from jax_fcm import bench

name, n, dtype = sys.argv[1], int(sys.argv[2]), jnp.dtype(sys.argv[3])
layer = next(layer for layer in bench.SUITE if layer.name == name)
args = bench.make_args(layer, n, dtype, 0)
f = jax.jit(bench.op(layer, None))
for _ in range(3):
    jax.block_until_ready(f(*args))
print("ran", name, n, dtype.name)
