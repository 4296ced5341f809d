"""cuDNN reference timings through PyTorch for the benchmark tables (only
where torch with CUDA is importable): modules built from torch.nn, channels
last, timed with CUDA events."""

from __future__ import annotations

import jax.numpy as jnp

TORCH_ACTIVATIONS = {None: "Identity", "none": "Identity", "relu": "ReLU", "relu6": "ReLU6", "gelu_exact": "GELU",
                     "silu": "SiLU", "hard_swish": "Hardswish"}


def depthwise_layers(torch, c: int, k: int, stride: int, activation) -> list:
    """A k x k depthwise Conv2d (bias, symmetric k // 2 padding) and its activation."""
    return [torch.nn.Conv2d(c, c, k, stride, k // 2, groups=c), activation_module(torch, activation)]


def activation_module(torch, name):
    return getattr(torch.nn, TORCH_ACTIVATIONS[name])()


def torch_net_time_us(build, n: int, c: int, hw: int, dtype, iters: int) -> float | None:
    """cuDNN through PyTorch: build(torch) -> an nn.Module (channels_last) fed
    (n, c, hw, hw) inputs, timed with CUDA events; None without torch + CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    tdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[jnp.dtype(dtype).name]
    torch.backends.cudnn.benchmark = True
    net = build(torch).cuda().to(dtype=tdtype, memory_format=torch.channels_last)
    xs = [torch.randn(n, c, hw, hw, device="cuda", dtype=tdtype).to(memory_format=torch.channels_last)
          for _ in range(4)]
    with torch.no_grad():
        for x in xs:
            net(x)
        torch.cuda.synchronize()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for i in range(iters):
            net(xs[i % len(xs)])
        stop.record()
        torch.cuda.synchronize()
    return start.elapsed_time(stop) / iters * 1e3
