"""Kernel configuration of the fused MBConv op: the compiled projection tiles
and the shared memory a block needs. Mirrors cuda_src/mbconv_traits.cuh
(make_smem_plan) and cuda_src/mbconv_launch.h (kMbconvTileNs)."""

from __future__ import annotations

import dataclasses
import math

from jax_fcm import tiling

TILE_N_CHOICES = (32, 64, 96, 128, 160)  # output channels per block
SPLIT_CHOICES = (1, 2, 4, 8)             # blocks per cluster sharing one output tile
TILE = 8                                 # output pixels per tile side
_SCRATCH_BYTES = 8 * 16 * 20 * 4         # per-warp epilogue scratch (Traits::kScratchBytes)


@dataclasses.dataclass(frozen=True)
class MbconvConfig:
    """Kernel configuration of one fused MBConv call (hashable: a static
    argument under jit).

    tile_n: output channels per block, one of TILE_N_CHOICES. With
      Cout > tile_n, ceil(Cout / tile_n) blocks share each pixel tile and each
      recomputes the expansion and the depthwise conv for its channels, so
      fewer, wider tiles are better until the last tile is mostly padding.
    channel_splits: 1, 2, 4 or 8 blocks (a Hopper thread-block cluster) that
      share one output tile, each expanding a slice of the 32-channel chunks
      of Cmid; their fp32 partial projections are summed through distributed
      shared memory. Deep blocks with few pixels (7x7, 14x14) get enough
      blocks to fill the GPU without recomputing anything. The kernel uses 1
      below sm_90 or when Cmid has fewer chunks.
    """

    tile_n: int = 64
    channel_splits: int = 1

    def __post_init__(self):
        if self.tile_n not in TILE_N_CHOICES:
            raise ValueError(f"config tile_n must be one of {TILE_N_CHOICES}; got {self.tile_n!r}")
        if self.channel_splits not in SPLIT_CHOICES:
            raise ValueError(f"config channel_splits must be one of {SPLIT_CHOICES}; got {self.channel_splits!r}")


def choose_config(n: int, ho: int, wo: int, cmid: int, cout: int, sm_count: int) -> MbconvConfig:
    """tile_n: the fewest blocks per pixel tile (each recomputes the block's
    first two convolutions), then the narrowest tile that covers Cout in that
    many. channel_splits: the fewest that give 64 blocks (a block's chunks
    run one after another: with a handful of blocks at N = 1 or 8, each would
    walk all of Cmid), and 2 where there are fewer than 1.5 blocks per SM,
    else none; never more than Cmid has chunks. Measured on an H100
    (docs/data/mbconv_splits_h100_n64.md): at N = 64, 2 splits took
    0.56-0.72x the time of none on the blocks with 64-128 blocks (7x7
    outputs), 4 and 8 were slower than 2 there, and every split was slower
    from 256 blocks on (a split block stages the whole input window and waits
    on a cluster barrier)."""
    passes = math.ceil(cout / TILE_N_CHOICES[-1])
    per_pass = math.ceil(cout / passes)
    tile_n = next(t for t in TILE_N_CHOICES if t >= per_pass)
    blocks = n * math.ceil(ho / TILE) * math.ceil(wo / TILE) * passes
    chunks = math.ceil(cmid / tiling.CHANNEL_CHUNK)
    wanted = next((s for s in SPLIT_CHOICES if blocks * s >= 64), SPLIT_CHOICES[-1])
    if blocks < 1.5 * sm_count:
        wanted = max(wanted, 2)
    splits = max(s for s in SPLIT_CHOICES if s <= min(wanted, chunks))
    return MbconvConfig(tile_n=tile_n, channel_splits=splits)


def smem_bytes(config: MbconvConfig, *, k: int, stride: int, cin: int, itemsize: int, project: bool = True) -> int:
    """Dynamic shared memory of one block: x's input window with every input
    channel, the expanded chunk's window, double-buffered taps, expansion
    columns and projection rows (none for pw_dw: project=False, with the
    32-column tile), and with channel splits the partial tile
    (mbconv_detail::make_smem_plan)."""
    window = ((TILE - 1) * stride + k) ** 2
    cin16 = math.ceil((cin + 1) / 16) * 16  # + the ones channel that carries the expansion bias
    x_bytes = math.ceil(window / 16) * 16 * (cin16 + 16 // itemsize) * itemsize
    chunk = tiling.CHANNEL_CHUNK
    expand_bytes = cin16 * (chunk + 8) * itemsize
    mid, taps, project_bytes, a_tile = tiling.stage_bytes(TILE, TILE, config.tile_n, chunk, k, stride, itemsize)
    total = x_bytes + mid + 2 * (taps + expand_bytes + (project_bytes if project else 0)) + a_tile + _SCRATCH_BYTES
    partial = TILE * TILE * (config.tile_n + 4) * 4  # the cluster's fp32 tile: over the x window if it fits
    return total + partial if config.channel_splits > 1 and partial > x_bytes + mid else total
