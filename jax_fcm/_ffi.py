"""Loads the native extension and registers its XLA FFI targets (once, at import)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax_fcm import _jax_fcm as _ext

BUILT_WITH_CUDA: bool = bool(_ext.built_with_cuda)

DW_PW_TARGET = "jax_fcm_dw_pw"
DW_PW_INT8_TARGET = "jax_fcm_dw_pw_int8"
DW_BACKWARD_TARGET = "jax_fcm_dw_backward"
MBCONV_TARGET = "jax_fcm_mbconv"
PW_DW_TARGET = "jax_fcm_pw_dw"
DEPTHWISE_TARGET = "jax_fcm_depthwise"
POINTWISE_TARGET = "jax_fcm_pointwise"
PW_PW_TARGET = "jax_fcm_pw_pw"
PW_PW_INT8_TARGET = "jax_fcm_pw_pw_int8"
CONVNEXT_MLP_TARGET = "jax_fcm_convnext_mlp"
CONV2D_TARGET = "jax_fcm_conv2d"

# The C++ ElementType codes (cuda_src/dw_pw_params.h) the native helpers take.
ELEMENT_TYPES = {jnp.dtype(jnp.float32): 0, jnp.dtype(jnp.bfloat16): 1, jnp.dtype(jnp.float16): 2}
INT8_ELEMENT_TYPE = 3  # ElementType::kS8: the quantized kernels


def _register() -> None:
    for name, capsule in _ext.cpu_targets().items():
        jax.ffi.register_ffi_target(name, capsule, platform="cpu")
    for name, capsule in _ext.cuda_targets().items():
        jax.ffi.register_ffi_target(name, capsule, platform="CUDA")


_register()


def check_backend_supported() -> None:
    """Raises if the default backend is a GPU but the CUDA kernels were not built."""
    if jax.default_backend() == "gpu" and not BUILT_WITH_CUDA:
        raise RuntimeError(
            "jax_fcm was built without CUDA kernels (no nvcc at build time) but JAX runs on a GPU; "
            "rebuild with nvcc on PATH, or pass implementation='xla'."
        )


def native():
    """The nanobind extension module (its host-side helpers, e.g. pointwise_plan)."""
    return _ext
