"""What the planner and the tile rule know about a GPU: named presets for
planning without one, and detection of the running device (matched to a
preset by name, with the SM count JAX reports)."""

from __future__ import annotations

import dataclasses
import functools


@dataclasses.dataclass(frozen=True)
class GpuSpec:
    """Hashable (a static input of jit-time decisions). Bandwidths are what a
    large device-to-device copy achieves (read + write bytes), not datasheet
    peaks; matrix rates are dense mma.sync-level rates, not wgmma peaks."""

    name: str = "NVIDIA H100 SXM"
    sm_count: int = 132
    smem_per_block: int = 227 * 1024   # opt-in maximum of one block
    smem_per_sm: int = 228 * 1024
    l2_bytes: int = 50 * 2**20
    dram_gbs: float = 3000.0           # measured copy bandwidth (docs/benchmarks.md)
    l2_gbs: float = 9000.0
    fp32_tflops: float = 67.0          # FFMA
    tensor_tflops: float = 600.0       # bf16/fp16 on tensor cores (TF32: half)
    clusters: bool = True              # thread-block clusters (compute capability >= 9.0)
    wgmma: bool = True                 # warpgroup MMA and TMA (sm_90a: compute capability 9.0)
    launch_us: float = 2.5             # per kernel, as seen in device-time traces at N = 1


PRESETS = {
    "h100": GpuSpec(),
    "h200": GpuSpec(name="NVIDIA H200", l2_bytes=60 * 2**20, dram_gbs=4230.0, l2_gbs=10000.0),
    "a100": GpuSpec(name="NVIDIA A100-SXM4-80GB", sm_count=108, smem_per_block=163 * 1024, smem_per_sm=164 * 1024,
                    l2_bytes=40 * 2**20, dram_gbs=1700.0, l2_gbs=5000.0, fp32_tflops=19.5, tensor_tflops=250.0,
                    clusters=False, wgmma=False),
}


def preset_for(device_kind: str) -> GpuSpec:
    """The preset whose name matches a JAX device_kind (H100 when none does)."""
    kind = device_kind.lower()
    for key in ("h200", "h100", "a100"):
        if key in kind:
            return PRESETS[key]
    return PRESETS["h100"]


def cuda_attributes(device) -> dict | None:
    """The CUDA runtime's attributes of a JAX GPU device, read through the
    extension (SM count, shared memory per block and per SM, registers, L2,
    compute capability, bus width); None without CUDA kernels or a GPU."""
    from jax_fcm import _jax_fcm

    ordinal = int(getattr(device, "local_hardware_id", None) or getattr(device, "id", 0) or 0)
    return _jax_fcm.cuda_device_attributes(ordinal)


@functools.lru_cache(maxsize=None)
def measured_copy_gbs(platform: str = "gpu", nbytes: int = 256 * 2**20) -> float:
    """The copy bandwidth (read + write GB/s of a large elementwise pass) of
    the platform's first device, measured once per process and platform:
    device time (JAX profiler) on a GPU, host wall-clock elsewhere."""
    import jax

    from jax_fcm import _timing

    device = jax.devices(platform)[0]

    def timer(fn, arg_sets):
        arg_sets = [jax.device_put(args, device) for args in arg_sets]
        if platform == "gpu":
            return _timing.device_time_us(fn, arg_sets, iters=10)
        return _timing.wall_time_us(fn, arg_sets, iters=10)

    return _timing.copy_bandwidth_gbs(timer, nbytes)


@functools.lru_cache(maxsize=None)
def detect(platform: str = "gpu", measure_bandwidth: bool = False) -> GpuSpec:
    """The running GPU: its preset (bandwidths and matrix rates, matched by
    name) with what the device itself reports — from the CUDA runtime where
    the CUDA kernels are built, else the SM count and compute capability JAX
    reports; with measure_bandwidth, the DRAM bandwidth measured on it
    (measured_copy_gbs) instead of the preset's; the H100 preset when there is
    no GPU (planning on a CPU)."""
    import jax

    try:
        device = jax.devices(platform)[0]
    except RuntimeError:
        return PRESETS["h100"]
    spec = preset_for(getattr(device, "device_kind", ""))
    changes = {}
    count = int(getattr(device, "core_count", 0) or 0)
    capability = str(getattr(device, "compute_capability", "") or "")
    if count > 0:
        changes["sm_count"] = count
    if capability:
        changes["clusters"] = float(capability) >= 9.0
        changes["wgmma"] = capability.split(".")[0] == "9"
    attrs = cuda_attributes(device) if platform == "gpu" else None
    if attrs:
        changes.update(sm_count=attrs["sm_count"], smem_per_block=attrs["smem_per_block"],
                       smem_per_sm=attrs["smem_per_sm"], l2_bytes=attrs["l2_bytes"],
                       clusters=tuple(attrs["compute_capability"]) >= (9, 0),
                       wgmma=tuple(attrs["compute_capability"])[0] == 9)
    if measure_bandwidth:
        changes["dram_gbs"] = measured_copy_gbs(platform)
    return dataclasses.replace(spec, **changes)
