"""Tile configurations of the fused CUDA kernel and the rule that picks one
per layer. Mirrors cuda_src/dw_pw_traits.cuh (shared-memory plan) and
cuda_src/dw_pw_dispatch.cu (compiled tiles); the planner builds on this."""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from jax_fcm.gpu import PRESETS, GpuSpec

# Output-channel tiles compiled per pixel-tile height (tile_w is always 8).
TILES = {8: (32, 64, 128, 160, 192), 4: (64, 128, 192)}
TILE_N_CHOICES = TILES[8]
TILE_W = 8
CHANNEL_CHUNK = 32  # input channels staged per step (Traits::KC), by default
WIDE_CHUNK = 64     # the other choice: 16-bit and int8 types, 8x8 tiles, tile_n >= 64
SPLIT_CHOICES = (1, 2, 4, 8)
_THREADS = 256


@dataclasses.dataclass(frozen=True)
class DwPwConfig:
    """Kernel configuration of one fused DW->PW call. Hashable, so it can be a
    static argument under jit.

    tile_h x tile_w: output pixels per block (8x8 or 4x8).
    tile_n: output channels per GEMM pass.
    cout_tiles_per_block: GEMM passes one block makes over a single depthwise
      result, which stays in shared memory (wide Cout computes the depthwise
      part once instead of once per tile). Reduced to 1 by the kernel when the
      resident result does not fit in shared memory.
    channel_splits: 1, 2, 4 or 8 blocks (a Hopper thread-block cluster) that
      share one output tile, each walking a slice of the input channels; their
      fp32 partial sums are added through distributed shared memory. Gives
      deep layers with few pixels more blocks. Needs cout_tiles_per_block=1;
      the kernel uses 1 below sm_90 or when C has fewer chunks of 32.
    tiles_per_block: pixel tiles one block walks in turn, its copy ring
      prefetching the next tile while it computes this one (a persistent
      grid); 0 (the default) sizes the grid to one wave of resident blocks
      when a block's taps and weights stay resident (one chunk of input
      channels, one pass), else 1; 1 is a block per tile. Channel splits
      imply 1.
    channel_chunk: input channels per step, 32 or 64. 64 (16-bit and int8
      types, 8x8 tiles, tile_n >= 64) halves a deep layer's steps, each with its barriers
      and copy waits, and reuses each thread's depthwise taps over twice the
      pixels; channels past C in the last chunk are wasted work.
    """

    tile_h: int = 8
    tile_w: int = TILE_W
    tile_n: int = 64
    cout_tiles_per_block: int = 1
    channel_splits: int = 1
    tiles_per_block: int = 0
    channel_chunk: int = CHANNEL_CHUNK

    def __post_init__(self):
        if self.tile_h not in TILES or self.tile_w != TILE_W:
            hw = tuple((h, TILE_W) for h in TILES)
            raise ValueError(f"config tile_h x tile_w must be one of {hw}; got {(self.tile_h, self.tile_w)}")
        if self.tile_n not in TILES[self.tile_h]:
            raise ValueError(f"config tile_n must be one of {TILES[self.tile_h]} for tile_h={self.tile_h}; "
                             f"got {self.tile_n}")
        if not isinstance(self.cout_tiles_per_block, int) or self.cout_tiles_per_block < 1:
            raise ValueError(f"config cout_tiles_per_block must be a positive int; got {self.cout_tiles_per_block!r}")
        if self.channel_splits not in SPLIT_CHOICES:
            raise ValueError(f"config channel_splits must be one of {SPLIT_CHOICES}; got {self.channel_splits!r}")
        if not isinstance(self.tiles_per_block, int) or self.tiles_per_block < 0:
            raise ValueError(f"config tiles_per_block must be an int >= 0 (0: one wave of resident blocks); "
                             f"got {self.tiles_per_block!r}")
        if self.channel_splits > 1 and self.cout_tiles_per_block > 1:
            raise ValueError("config channel_splits > 1 needs cout_tiles_per_block == 1")
        if self.channel_chunk not in (CHANNEL_CHUNK, WIDE_CHUNK):
            raise ValueError(f"config channel_chunk must be {CHANNEL_CHUNK} or {WIDE_CHUNK}; got {self.channel_chunk!r}")
        if self.channel_chunk == WIDE_CHUNK and (self.tile_h != 8 or self.tile_n < 64):
            raise ValueError(f"config channel_chunk={WIDE_CHUNK} needs tile_h=8 and tile_n >= 64; "
                             f"got tile_h={self.tile_h}, tile_n={self.tile_n}")


def config_attrs(cfg: DwPwConfig) -> dict:
    """The FFI attributes of a configuration (the fused DW -> PW targets'
    tile fields, decode_window_and_tile in ffi/dw_pw_ffi.h)."""
    return {field.name: np.int64(getattr(cfg, field.name)) for field in dataclasses.fields(cfg)}


def config_label(cfg: DwPwConfig) -> str:
    """Short name of a configuration, e.g. "8x8 n64 x6" or "4x8 n192 split2"."""
    label = f"{cfg.tile_h}x{cfg.tile_w} n{cfg.tile_n}"
    if cfg.cout_tiles_per_block > 1:
        label += f" x{cfg.cout_tiles_per_block}"
    if cfg.channel_splits > 1:
        label += f" split{cfg.channel_splits}"
    if cfg.tiles_per_block and cfg.channel_splits == 1:
        label += f" t{cfg.tiles_per_block}"
    if cfg.channel_chunk != CHANNEL_CHUNK:
        label += f" kc{cfg.channel_chunk}"
    return label


def all_configs(cout: int, c: int = 1, tiles_per_block=(0,), itemsize: int = 4):
    """Every compiled configuration for `c` -> `cout` channels: single-pass
    tiles, each tile swept over all of Cout by one block, and channel splits
    up to the number of channel chunks; for 16-bit and int8 types (itemsize
    2, 1) also the 64-channel chunks. Unsplit configurations come once per entry of
    `tiles_per_block` (default: the persistent grid only)."""
    chunks = (CHANNEL_CHUNK, WIDE_CHUNK) if itemsize <= 2 else (CHANNEL_CHUNK,)
    for chunk in chunks:
        nchunks = math.ceil(c / chunk)
        for tile_h, tile_ns in TILES.items():
            for tile_n in tile_ns:
                if chunk == WIDE_CHUNK and (tile_h != 8 or tile_n < 64):
                    continue
                co_tiles = math.ceil(cout / tile_n)
                for passes in sorted({1, co_tiles}):
                    for tiles in tiles_per_block:
                        yield DwPwConfig(tile_h=tile_h, tile_n=tile_n, cout_tiles_per_block=passes,
                                         tiles_per_block=tiles, channel_chunk=chunk)
                for splits in SPLIT_CHOICES[1:]:
                    if splits <= nchunks:
                        yield DwPwConfig(tile_h=tile_h, tile_n=tile_n, channel_splits=splits, channel_chunk=chunk)


def _input_pad(tile_h: int, tile_w: int, chunk: int, stride: int, itemsize: int) -> int:
    """Traits::kInPad: elements padding each staged 32-channel input pixel of
    16-bit and int8 types so a warp's depthwise loads avoid bank conflicts."""
    run = chunk // 4 * tile_h * tile_w // _THREADS
    if itemsize == 1:  # input_pad_int8: the warp's runs of `chunk` bytes over the 32 banks
        segs, width = 32 // (chunk // 4), chunk // 4

        def worst(pad):
            starts = [seg * run * stride * (chunk + pad) // 4 % 32 for seg in range(segs)]
            return max(sum((bank - start) % 32 < width for start in starts) for bank in range(32))

        return min(range(0, 128, 16), key=worst)
    if itemsize == 4 or chunk != CHANNEL_CHUNK:
        return 0
    return next((2 * pad for pad in range(0, 32, 4) if run * stride * (16 + pad) % 32 == 16), 0)


def buffer_bytes(cfg: DwPwConfig, k: int, stride: int, itemsize: int) -> tuple[int, int, int, int]:
    """Bytes of one input stage, one taps stage, one weights stage (each with
    its bias row) and one A slot (Traits::kInStageBytes ... kASlotBytes)."""
    return stage_bytes(cfg.tile_h, cfg.tile_w, cfg.tile_n, cfg.channel_chunk, k, stride, itemsize)


def stage_bytes(tile_h: int, tile_w: int, tile_n: int, chunk: int, k: int, stride: int,
                itemsize: int) -> tuple[int, int, int, int]:
    """buffer_bytes for any Traits geometry (the MBConv kernel compiles tile_n
    values that DwPwConfig does not take). int8 (itemsize 1) stages no bias
    rows and its pointwise rows transposed ([tile_n][chunk + 16])."""
    vec = 16 // itemsize
    in_h, in_w = (tile_h - 1) * stride + k, (tile_w - 1) * stride + k
    quantized = itemsize == 1
    weights = tile_n * (chunk + 16) if quantized else (chunk + 1) * (tile_n + 8) * itemsize
    return (in_h * in_w * (chunk + _input_pad(tile_h, tile_w, chunk, stride, itemsize)) * itemsize,
            (k * k + (0 if quantized else 1)) * chunk * itemsize, weights, tile_h * tile_w * (chunk + vec) * itemsize)


def smem_bytes(cfg: DwPwConfig, *, k: int, stride: int, c: int, itemsize: int, max_stages: int = 3) -> int:
    """Dynamic shared memory of one block (make_smem_plan in dw_pw_traits.cuh,
    with the copy ring launch_dw_pw picks first: up to 3 stages)."""
    nchunks = math.ceil(c / cfg.channel_chunk)
    passes = cfg.cout_tiles_per_block
    chunks = math.ceil(nchunks / cfg.channel_splits)
    one_step = chunks == 1 and passes == 1  # taps and weights stay resident
    walks_tiles = cfg.channel_splits == 1 and (cfg.tiles_per_block > 1 or (cfg.tiles_per_block == 0 and one_step))
    stages = max_stages if walks_tiles else min(passes * chunks, max_stages)
    taps_stages = 1 if chunks == 1 else stages
    w_stages = 1 if chunks == 1 and passes == 1 else stages
    a_slots = nchunks if passes > 1 else min(2, chunks)
    input_stage, taps_stage, w_stage, a_slot = buffer_bytes(cfg, k, stride, itemsize)
    inputs = stages * input_stage
    epilogue = 8 * 16 * 20 * 4 + (cfg.tile_h * cfg.tile_w * (cfg.tile_n + 4) * 4 if cfg.channel_splits > 1 else 0)
    region0 = inputs + epilogue if walks_tiles else max(inputs, epilogue)
    return region0 + taps_stages * taps_stage + w_stages * w_stage + a_slots * a_slot


def _min_blocks(cfg: DwPwConfig, k: int, stride: int, itemsize: int) -> int:
    """Traits::kMinBlocks: resident blocks the register budget is sized for
    (no more than the shared memory of the usual 3-stage plan allows)."""
    acc = cfg.tile_h * cfg.tile_w * cfg.tile_n // _THREADS
    by_regs = (2 if acc <= 16 else 1) if k == 7 else (3 if acc <= 16 else 2)
    input_stage, taps_stage, w_stage, a_slot = buffer_bytes(cfg, k, stride, itemsize)
    usual = 3 * (input_stage + taps_stage + w_stage) + 2 * a_slot
    return max(1, min(by_regs, 228 * 1024 // (usual + 1024)))


@dataclasses.dataclass(frozen=True)
class LatencyModel:
    """Constants of estimate_cycles (SM cycles; l2_bytes_per_cycle is GPU-wide).
    Fitted to a sweep of every configuration of the benchmark suite at N = 8
    and 64 on an H100 with kernel v6, 64-channel chunks and tile_n = 160
    included (docs/benchmarks.md, docs/data/sweep_h100_kernel_v6.csv)."""

    dw_step: float = 857.0        # fixed latency of one depthwise chunk step
    dw_per_tap: float = 12.3      # per (output run x tap), 4 channels
    mma_step: float = 1140.0      # fixed latency of one GEMM chunk step
    epilogue: float = 502.0       # fixed latency of one output tile's epilogue
    epilogue_per_value: float = 11.2
    split_step: float = 3539.0    # per doubling of the cluster (barriers, DSMEM)
    split_per_value: float = 30.7
    copy: float = 15.3            # per 16-byte copy a thread issues (input tile, weights)
    short_tile: float = 1.11      # latency factor of 4x8 tiles (half the pixels per fixed cost)
    l2_bytes_per_cycle: float = 4330.0
    contention: float = 0.254     # added to a block's latency per other block resident on its SM
    # Of an SM's block slots, the share clusters of 4 or 8 blocks can fill:
    # a cluster must sit in one GPC (Nsight Compute on an H100: 62 clusters
    # of 4 resident at 2 blocks per SM, not 66).
    cluster_fill: float = 0.94


LATENCY_MODEL = LatencyModel()


def estimate_cycles(cfg: DwPwConfig, *, n, ho, wo, c, cout, k, stride, itemsize, tensor_cores=True, gpu=PRESETS["h100"],
                    model: LatencyModel = LATENCY_MODEL):
    """Rough SM-cycle estimate of one launch, only used to rank configurations.

    Measured on H100/H200 (docs/benchmarks.md), the kernel is latency-bound:
    a block's chunk steps run one after another, and the SM overlaps only the
    blocks resident at once. So: waves of resident blocks x one block's
    latency (depthwise steps, GEMM steps, epilogues), against the L2 traffic
    that halos and re-read weights cause. The constants (LatencyModel) were
    fitted to a sweep of every configuration over the benchmark suite on an
    H100 (python -m jax_fcm.bench --sweep): the choice lands within 1 % of
    the best configuration on the geometric mean of those 32 cases, and
    within 3 % in each."""
    kc = cfg.channel_chunk
    co_tiles = math.ceil(cout / cfg.tile_n)
    passes = min(cfg.cout_tiles_per_block, co_tiles)
    pixels = cfg.tile_h * cfg.tile_w
    tiles = n * math.ceil(ho / cfg.tile_h) * math.ceil(wo / cfg.tile_w)
    splits = cfg.channel_splits
    if splits > 1 and (not gpu.clusters or splits > math.ceil(c / kc)):
        return math.inf  # the kernel would not split: rank the real plan instead
    blocks = tiles * math.ceil(co_tiles / passes) * splits
    nchunks = math.ceil(c / kc / splits)
    cfg = dataclasses.replace(cfg, cout_tiles_per_block=passes)
    smem = smem_bytes(cfg, k=k, stride=stride, c=c, itemsize=itemsize)
    if smem > gpu.smem_per_block:
        smem = smem_bytes(cfg, k=k, stride=stride, c=c, itemsize=itemsize, max_stages=2)
    if smem > gpu.smem_per_block:
        return math.inf
    resident = max(1, min(_min_blocks(cfg, k, stride, itemsize), gpu.smem_per_sm // (smem + 1024)))
    mac_rate = {1: 2048, 2: 1024}.get(itemsize, 512) if tensor_cores else 128
    run = pixels * kc // _THREADS // 4  # depthwise outputs per thread and chunk
    in_h, in_w = (cfg.tile_h - 1) * stride + k, (cfg.tile_w - 1) * stride + k
    input_copies = in_h * in_w * kc * itemsize / 16 / _THREADS
    weight_copies = (kc + 1) * cfg.tile_n * itemsize / 16 / _THREADS
    dw_step = model.dw_step + run * k * k * 4 * model.dw_per_tap + input_copies * model.copy  # FMA, loads, converts
    mma_step = model.mma_step + 2 * pixels * kc * cfg.tile_n / mac_rate + weight_copies * model.copy
    epilogue = model.epilogue + pixels * cfg.tile_n / _THREADS * model.epilogue_per_value
    if splits > 1:  # partial tiles through distributed shared memory, two cluster barriers
        epilogue += model.split_step * math.log2(splits) + pixels * cfg.tile_n * splits / _THREADS * model.split_per_value
    block = (nchunks * dw_step + passes * (nchunks * mma_step + epilogue)) * (model.short_tile if cfg.tile_h == 4 else 1)
    slots = gpu.sm_count * resident
    if splits >= 4:
        slots = int(slots * model.cluster_fill) // splits * splits
    co_resident = min(resident, math.ceil(blocks / gpu.sm_count))  # blocks one SM runs at once
    compute = math.ceil(blocks / slots) * block * (1 + model.contention * (co_resident - 1))
    l2_bytes = blocks * nchunks * kc * itemsize * (in_h * in_w + passes * cfg.tile_n)
    return max(compute, l2_bytes / model.l2_bytes_per_cycle)


@functools.lru_cache(maxsize=None)
def choose_config(n, ho, wo, c, cout, k, stride, itemsize, tensor_cores=True, gpu: GpuSpec = PRESETS["h100"]) -> DwPwConfig:
    """The configuration with the lowest estimate (ties: the first listed)."""
    shape = dict(n=n, ho=ho, wo=wo, c=c, cout=cout, k=k, stride=stride, itemsize=itemsize,
                 tensor_cores=tensor_cores, gpu=gpu)
    cost, cfg = min(((estimate_cycles(cfg, **shape), i, cfg) for i, cfg in enumerate(all_configs(cout, c, itemsize=itemsize))))[::2]
    if math.isinf(cost):
        raise ValueError(f"no compiled tile configuration fits in {gpu.smem_per_block} bytes of shared memory "
                         f"for k={k}, stride={stride}, C={c}, itemsize={itemsize}")
    return cfg
