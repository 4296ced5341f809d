"""Test conventions: every numerics test runs on the CPU handler and, where a
GPU and the CUDA build are present, on the CUDA kernel (marker `gpu`)."""

from __future__ import annotations

import dataclasses
import os
import zlib

# Four host devices for the sharding tests (must be set before jax starts).
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jax_fcm


def gpu_available() -> bool:
    try:
        return bool(jax.devices("gpu")) and jax_fcm.BUILT_WITH_CUDA
    except RuntimeError:
        return False


def pytest_collection_modifyitems(config, items):
    if gpu_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU and jax_fcm built with CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


PLATFORMS = ["cpu", pytest.param("gpu", marks=pytest.mark.gpu)]


@pytest.fixture(params=PLATFORMS)
def platform(request):
    return request.param


@pytest.fixture
def mesh():
    """A 1-D "batch" mesh of four host devices (the sharding tests)."""
    devices = jax.devices("cpu")
    if len(devices) < 4:
        pytest.skip("needs 4 host devices (XLA_FLAGS=--xla_force_host_platform_device_count=4)")
    return jax.sharding.Mesh(np.array(devices[:4]), ("batch",))


def run_on(platform: str, fn, *args):
    """jit(fn)(*args) with the inputs committed to the platform's first device."""
    device = jax.devices(platform)[0]
    return jax.jit(fn)(*jax.device_put(args, device))


def check_batch_transforms(platform: str, mesh, op, x, params, expected: np.ndarray, target: str):
    """An op of (x, params) under the transforms users put it in, against the
    expected output of x (leading axis included): vmap over x folds into the
    batch; a batch-sharded x keeps its sharding; the lowering names the FFI
    target."""
    out = run_on(platform, jax.vmap(op, in_axes=(0, None)), x, params)
    np.testing.assert_array_equal(np.asarray(out), expected)
    flat = x.reshape((-1,) + x.shape[2:])
    xs = jax.device_put(flat, NamedSharding(mesh, P("batch")))
    sharded = jax.jit(op)(xs, params)
    assert sharded.sharding.spec[0] == "batch"
    np.testing.assert_array_equal(np.asarray(sharded), expected.reshape((-1,) + expected.shape[2:]))
    assert target in jax.jit(op).lower(flat, params).as_text()


def call_with_change(op, x, params, change: dict):
    """op(x=x, params=params) with one entry of an int8 op's error table
    applied: call arguments, or "params.<field>" replacing a field of params."""
    fields = {key.removeprefix("params."): v for key, v in change.items() if key.startswith("params.")}
    kwargs = dict(x=x, params=dataclasses.replace(params, **fields) if fields else params)
    kwargs.update({key: v for key, v in change.items() if not key.startswith("params.")})
    return op(**kwargs)


def check_ffi_rejects(platform: str, target: str, attrs: dict, good: tuple, bad: list):
    """Calls the FFI target directly, past the Python checks: ``good`` (result
    shape, operands) must run; every (result shape, operands, attribute
    changes, message) in ``bad`` must come back as an error with that message
    (the handler's ffi::Error), not a crash."""

    def run(result, operands, changes):
        call = jax.ffi.ffi_call(target, result)
        return jax.block_until_ready(run_on(platform, lambda *a: call(*a, **{**attrs, **changes}), *operands))

    assert run(*good, {}).shape == good[0].shape
    for result, operands, changes, match in bad:
        with pytest.raises(Exception, match=match):
            run(result, operands, changes)


@pytest.fixture
def rng(request):
    # Fresh inputs per test, reproducible per test id.
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


# Max-normalized error bound, max|out - ref| / max|ref|, against a float32
# HIGHEST-precision reference computed from the same (rounded) inputs.
TOLERANCES = {
    "float32": 5e-6,   # full fp32 (CPU handler, or precision=HIGHEST on GPU)
    "tf32": 5e-3,      # float32 inputs, pointwise GEMM on TF32 tensor cores (10-bit mantissa)
    "bfloat16": 1e-2,  # intermediate and output rounded to bf16 (8-bit mantissa)
    "float16": 2e-3,   # intermediate and output rounded to fp16 (11-bit mantissa)
}


def tolerance_key(dtype, platform: str, precision=None) -> str:
    name = jnp.dtype(dtype).name
    if name == "float32" and platform == "gpu" and precision not in ("highest", "high", jax.lax.Precision.HIGHEST):
        return "tf32"
    return name


def max_normalized_error(out, ref) -> float:
    out = np.asarray(jnp.asarray(out, jnp.float32))
    ref = np.asarray(ref, np.float32)
    assert out.shape == ref.shape
    assert np.all(np.isfinite(out)), "non-finite values in the output"
    # Inputs are drawn so that outputs are of unit scale; a floor of 1 keeps a
    # lone output that cancels to ~0 from turning rounding into a huge ratio.
    scale = max(float(np.max(np.abs(ref))), 1.0)
    return float(np.max(np.abs(out - ref))) / scale


def assert_matches(out, ref, key: str):
    err = max_normalized_error(out, ref)
    assert err <= TOLERANCES[key], f"max-normalized error {err:.3g} > {TOLERANCES[key]} ({key})"


def array_maker(rng, dtype):
    """arr(shape, scale=1.0): standard-normal values times `scale`, as `dtype`.
    The ops' tests scale weights by 1/fan-in so outputs are of unit scale."""

    def arr(shape, scale=1.0):
        return jnp.asarray(rng.standard_normal(shape) * scale, dtype)

    return arr


def xla_reference(op, args, **kw):
    """op(*args, **kw) through its lax implementation at HIGHEST precision on
    the CPU, from float32 copies of the (already rounded) inputs. The call's
    own `precision` and `config` are dropped: the reference has its own."""
    kw = {key: v for key, v in kw.items() if key not in ("precision", "config")}
    f32 = [None if a is None else np.asarray(jnp.asarray(a, jnp.float32)) for a in args]
    with jax.default_device(jax.devices("cpu")[0]):
        return op(*f32, implementation="xla", precision="highest", **kw)


def random_layer(rng, n, h, w, c, cout, k, dtype, lead=()):
    """x, dw_kernel, pw_kernel, dw_bias, pw_bias with unit-scale outputs."""
    arr = array_maker(rng, dtype)
    return (
        arr(tuple(lead) + (n, h, w, c)),
        arr((k, k, 1, c), 1.0 / k),
        arr((1, 1, c, cout), 1.0 / np.sqrt(c)),
        arr((c,), 0.5),
        arr((cout,), 0.5),
    )


def f32_reference(x, dw, pw, dwb, pwb, **kw):
    return xla_reference(jax_fcm.dw_pw, (x, dw, pw, dwb, pwb), **kw)
