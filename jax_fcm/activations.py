"""Activation names accepted by the ops, their codes in the native kernels, and
the same functions in jax.numpy (used by the reference implementation)."""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp


def _gelu_exact(x):
    return jax.nn.gelu(x, approximate=False)


def _gelu_tanh(x):
    return jax.nn.gelu(x, approximate=True)


# name -> (code in cuda_src/activations.h, jax implementation)
_ACTIVATIONS: dict[str, tuple[int, Callable]] = {
    "none": (0, lambda x: x),
    "relu": (1, jax.nn.relu),
    "relu6": (2, jax.nn.relu6),
    "silu": (3, jax.nn.silu),
    "gelu_exact": (4, _gelu_exact),
    "gelu_tanh": (5, _gelu_tanh),
    "hard_swish": (6, jax.nn.hard_swish),
}
_ALIASES = {None: "none", "swish": "silu", "hardswish": "hard_swish"}

ACTIVATION_NAMES = tuple(_ACTIVATIONS)


def normalize_activation(value, arg_name: str) -> str:
    """Returns the canonical activation name or raises ValueError naming the argument."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{arg_name} must be None or one of {ACTIVATION_NAMES}, got {value!r}")
    name = _ALIASES.get(value, value)
    if name == "gelu":
        raise ValueError(
            f"{arg_name}='gelu' is ambiguous: use 'gelu_exact' (erf form, PyTorch's default) or "
            "'gelu_tanh' (tanh approximation, jax.nn.gelu's and Flax's default)"
        )
    if name not in _ACTIVATIONS:
        raise ValueError(f"{arg_name} must be None or one of {ACTIVATION_NAMES}, got {value!r}")
    return name


def activation_code(name: str) -> int:
    return _ACTIVATIONS[name][0]


def activation_fn(name) -> Callable:
    """The jax function of an activation name (None -> identity), for stock layers."""
    return _ACTIVATIONS[normalize_activation(name, "activation")][1]


def apply_activation(name: str, x):
    if name == "none":
        return x
    # Evaluate in float32 and round once, like the kernels' epilogues.
    return _ACTIVATIONS[name][1](x.astype(jnp.float32)).astype(x.dtype)


def cotangent_before_activation(name: str, g, pre_activation: Callable):
    """The cotangent g of activation(pre) carried back to pre; pre_activation()
    recomputes pre (called only when there is an activation). The custom
    VJPs' first step: recomputing the pre-activation with the kernel is
    cheaper than keeping a second output."""
    if name == "none":
        return g
    _, vjp = jax.vjp(functools.partial(apply_activation, name), pre_activation())
    return vjp(g)[0]
