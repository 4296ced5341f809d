"""The FFI calls of the ops as differentiable, batchable JAX functions: a
single-convolution op's (operands x, kernel, bias; a hashable call
description ``st`` with ``activation`` and ``reference``; jax_fcm.depthwise,
pointwise and conv2d share it), and the fused ops' custom VJP through their
reference."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jax_fcm import _batching, _ffi
from jax_fcm.activations import cotangent_before_activation


def differentiable_kernel_call(ffi_call: Callable, backward: Callable | None = None) -> Callable:
    """(st, x, kernel, bias) -> ffi_call(st, x, kernel, bias) with vmap and
    batch-sharding rules (_batching) and a custom VJP: by default
    linear_backward; an op with a backward of its own passes
    ``backward(call, st, residuals, g)``, ``call`` being this function."""
    batched = _batching.per_call_description(ffi_call, weight_ranks=(4, 1))
    backward = backward or linear_backward

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def call(st, x, kernel, bias):
        return batched(st)(x, kernel, bias)

    def forward(st, x, kernel, bias):
        return call(st, x, kernel, bias), (x, kernel, bias)

    call.defvjp(forward, lambda st, residuals, g: backward(call, st, residuals, g))
    return call


def with_reference_backward(batched: Callable) -> Callable:
    """(st, *operands) -> batched(st)(*operands) with a custom VJP whose
    backward is XLA's backward of ``st.reference`` (it recomputes what the
    kernel kept on chip): the fused ops' (pw_pw, mbconv, convnext_block)."""

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def call(st, *operands):
        return batched(st)(*operands)

    def forward(st, *operands):
        return call(st, *operands), operands

    def backward(st, operands, g):
        _, vjp = jax.vjp(st.reference, *operands)
        return vjp(g)

    call.defvjp(forward, backward)
    return call


def pre_activation_cotangent(call: Callable, st, residuals, g):
    """g through the activation's derivative, at the pre-activation the
    kernel recomputes without its activation (no stored intermediate)."""
    x, kernel, bias = residuals
    linear = dataclasses.replace(st, activation="none")
    return cotangent_before_activation(st.activation, g, lambda: call(linear, x, kernel, bias))


def linear_backward(call: Callable, st, residuals, g):
    """The activation's derivative (pre_activation_cotangent), then XLA's
    own backward of the linear convolution + bias (``st.reference`` without
    the activation; its forward recomputation is dead code and removed)."""
    d_pre = pre_activation_cotangent(call, st, residuals, g)
    _, vjp = jax.vjp(dataclasses.replace(st, activation="none").reference, *residuals)
    return vjp(d_pre)


def run(call: Callable, st, x, kernel, bias, implementation: str):
    """The op on x (extra leading axes folded into the batch and restored),
    bias None as zeros: XLA's reference with implementation "xla", else the
    kernel call (differentiable_kernel_call's function)."""
    *lead, h, w, c = x.shape
    bias = jnp.zeros((kernel.shape[-1],), x.dtype) if bias is None else bias
    x4 = x.reshape((math.prod(lead), h, w, c))
    if implementation == "xla":
        y = st.reference(x4, kernel, bias)
    else:
        _ffi.check_backend_supported()
        y = call(st, x4, kernel, bias)
    return y.reshape(tuple(lead) + y.shape[1:])
