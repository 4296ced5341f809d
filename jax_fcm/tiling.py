"""Tile configurations of the fused CUDA kernel and the rule that picks one
per layer. Mirrors cuda_src/dw_pw_traits.cuh (shared-memory plan) and
cuda_src/dw_pw_dispatch.cu (compiled tiles); the planner builds on this."""

from __future__ import annotations

import dataclasses
import functools
import math

from jax_fcm.gpu import PRESETS, GpuSpec

# Output-channel tiles compiled per pixel-tile height (tile_w is always 8).
TILES = {8: (32, 64, 128, 192), 4: (64, 128, 192)}
TILE_N_CHOICES = TILES[8]
TILE_W = 8
CHANNEL_CHUNK = 32  # input channels staged per step (Traits::KC)
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
    """

    tile_h: int = 8
    tile_w: int = TILE_W
    tile_n: int = 64
    cout_tiles_per_block: int = 1
    channel_splits: int = 1

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
        if self.channel_splits > 1 and self.cout_tiles_per_block > 1:
            raise ValueError("config channel_splits > 1 needs cout_tiles_per_block == 1")


def config_label(cfg: DwPwConfig) -> str:
    """Short name of a configuration, e.g. "8x8 n64 x6" or "4x8 n192 split2"."""
    label = f"{cfg.tile_h}x{cfg.tile_w} n{cfg.tile_n}"
    if cfg.cout_tiles_per_block > 1:
        label += f" x{cfg.cout_tiles_per_block}"
    if cfg.channel_splits > 1:
        label += f" split{cfg.channel_splits}"
    return label


def all_configs(cout: int, c: int = 1):
    """Every compiled configuration for `c` -> `cout` channels: single-pass
    tiles, each tile swept over all of Cout by one block, and channel splits
    up to the number of 32-channel chunks."""
    nchunks = math.ceil(c / CHANNEL_CHUNK)
    for tile_h, tile_ns in TILES.items():
        for tile_n in tile_ns:
            co_tiles = math.ceil(cout / tile_n)
            for passes in sorted({1, co_tiles}):
                yield DwPwConfig(tile_h=tile_h, tile_n=tile_n, cout_tiles_per_block=passes)
            for splits in SPLIT_CHOICES[1:]:
                if splits <= nchunks:
                    yield DwPwConfig(tile_h=tile_h, tile_n=tile_n, channel_splits=splits)


def smem_bytes(cfg: DwPwConfig, *, k: int, stride: int, c: int, itemsize: int, max_stages: int = 3) -> int:
    """Dynamic shared memory of one block (make_smem_plan in dw_pw_traits.cuh,
    with the copy ring launch_dw_pw picks first: up to 3 stages)."""
    kc, vec = CHANNEL_CHUNK, 16 // itemsize
    nchunks = math.ceil(c / kc)
    passes = cfg.cout_tiles_per_block
    chunks = math.ceil(nchunks / cfg.channel_splits)
    stages = min(passes * chunks, max_stages)
    a_slots = nchunks if passes > 1 else min(2, chunks)
    in_h, in_w = (cfg.tile_h - 1) * stride + k, (cfg.tile_w - 1) * stride + k
    epilogue = 8 * 16 * 20 * 4 + (cfg.tile_h * cfg.tile_w * cfg.tile_n * 4 if cfg.channel_splits > 1 else 0)
    region0 = max(stages * in_h * in_w * kc * itemsize, epilogue)
    taps = stages * (k * k + 1) * kc * itemsize  # + the bias row
    weights = stages * (kc + 1) * (cfg.tile_n + vec) * itemsize  # + the bias row
    a_tiles = a_slots * cfg.tile_h * cfg.tile_w * (kc + vec) * itemsize
    return region0 + taps + weights + a_tiles


def _min_blocks(cfg: DwPwConfig, k: int) -> int:
    """Traits::kMinBlocks: resident blocks the register budget allows."""
    acc = cfg.tile_h * cfg.tile_w * cfg.tile_n // _THREADS
    if k == 7:
        return 2 if acc <= 16 else 1
    return 3 if acc <= 16 else 2


def estimate_cycles(cfg: DwPwConfig, *, n, ho, wo, c, cout, k, stride, itemsize, tensor_cores=True, gpu=PRESETS["h100"]):
    """Rough SM-cycle estimate of one launch, only used to rank configurations.

    Measured on H100/H200 (docs/benchmarks.md), the kernel is latency-bound:
    a block's chunk steps run one after another, and the SM overlaps only the
    blocks resident at once. So: waves of resident blocks x one block's
    latency (depthwise steps, GEMM steps, epilogues), against the L2 traffic
    that halos and re-read weights cause. The constants were fitted to a
    sweep of every configuration over the benchmark suite on an H200
    (python -m jax_fcm.bench --sweep; docs/benchmarks.md): the choice lands
    within 5 % of the best configuration on the geometric mean."""
    kc = CHANNEL_CHUNK
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
    resident = max(1, min(_min_blocks(cfg, k), gpu.smem_per_sm // (smem + 1024)))
    mac_rate = (1024 if itemsize == 2 else 512) if tensor_cores else 128
    run = pixels * kc // _THREADS // 4  # depthwise outputs per thread and chunk
    dw_step = 1000 + run * k * k * 4 * 2.5 * 4  # FMA + loads + converts, 2 warps per scheduler
    mma_step = 1500 + 2 * pixels * kc * cfg.tile_n / mac_rate
    epilogue = 300 + pixels * cfg.tile_n / _THREADS * 20
    if splits > 1:  # partial tiles through distributed shared memory, two cluster barriers
        epilogue += 12000 * math.log2(splits) + pixels * cfg.tile_n * splits / _THREADS * 32
    block = nchunks * dw_step + passes * (nchunks * mma_step + epilogue)
    per_sm = math.ceil(blocks / gpu.sm_count)
    compute = math.ceil(per_sm / resident) * block
    in_h, in_w = (cfg.tile_h - 1) * stride + k, (cfg.tile_w - 1) * stride + k
    l2_bytes = blocks * nchunks * kc * itemsize * (in_h * in_w + passes * cfg.tile_n)
    return max(compute, l2_bytes / 5000)


@functools.lru_cache(maxsize=None)
def choose_config(n, ho, wo, c, cout, k, stride, itemsize, tensor_cores=True, gpu: GpuSpec = PRESETS["h100"]) -> DwPwConfig:
    """The configuration with the lowest estimate (ties: the first listed)."""
    shape = dict(n=n, ho=ho, wo=wo, c=c, cout=cout, k=k, stride=stride, itemsize=itemsize,
                 tensor_cores=tensor_cores, gpu=gpu)
    cost, cfg = min(((estimate_cycles(cfg, **shape), i, cfg) for i, cfg in enumerate(all_configs(cout, c))))[::2]
    if math.isinf(cost):
        raise ValueError(f"no compiled tile configuration fits in {gpu.smem_per_block} bytes of shared memory "
                         f"for k={k}, stride={stride}, C={c}, itemsize={itemsize}")
    return cfg
