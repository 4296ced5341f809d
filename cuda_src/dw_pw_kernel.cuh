// Fused depthwise k x k -> bias -> activation -> pointwise 1x1 -> bias ->
// activation, NHWC. One kernel template, instantiated per element type, PW
// math, kernel size, stride, output-channel tile and pixel-tile height (see
// FCM_INSTANTIATE_DW_PW and the generated instantiation files of the build).
//
// A block owns a TH x 8 tile of output pixels and `passes` consecutive tiles
// of TN output channels. It walks the input channels in chunks of KC = 32
// through a ring of up to 3 stage buffers: while chunk i is computed, chunks
// i+1 and i+2 are already being copied (cp.async). Per chunk:
//   1. depthwise conv of the staged input into the A tile [pixels][KC]
//      (shared memory; the intermediate never touches global memory),
//   2. A x the chunk's pointwise rows, accumulated in fp32 registers.
// With several channel tiles per block (wide Cout, e.g. ConvNeXt's 4x
// expansion), the A tiles of all chunks stay resident and later tiles only
// stream pointwise weights: the depthwise part is computed once per pixel.
// With channel splits (Hopper), a cluster of `splits` blocks shares one output
// tile, each block walking a slice of the channel chunks; their fp32 partial
// sums are added through distributed shared memory, so deep layers with few
// pixels still spread over many SMs and no partial sum touches global memory.
// The same template runs int8 (Traits::kQuantized, jax_fcm.dw_pw_int8): int32
// sums requantized per channel where the float kernel adds bias and
// activation, the int8 intermediate on int8 tensor cores.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <climits>
#include <cstdint>

#include "async_copy.cuh"
#include "cluster_launch.cuh"
#include "cluster_reduce.cuh"
#include "dw_pw_depthwise.cuh"
#include "dw_pw_launch.h"
#include "dw_pw_pointwise.cuh"
#include "dw_pw_stage.cuh"
#include "dw_pw_traits.cuh"
#include "dynamic_smem.cuh"

namespace jax_fcm {
namespace dw_pw_detail {

// The requantization of each stage of an int8 kernel (unused otherwise).
__device__ __forceinline__ Requant dw_requant(const DwPwPointers& p, const DwPwEpilogue& epi) {
  return Requant{static_cast<const int32_t*>(p.dw_bias), p.dw_multiplier, epi.dw_qmin, epi.dw_qmax};
}
__device__ __forceinline__ Requant pw_requant(const DwPwPointers& p, const DwPwEpilogue& epi) {
  return Requant{static_cast<const int32_t*>(p.pw_bias), p.pw_multiplier, epi.pw_qmin, epi.pw_qmax};
}

// The epilogue of 8 consecutive output channels of one pixel: bias (staged
// in bias_s) + activation Act, or int8's requantization; then the store.
template <class Tr, int Act, typename V>
__device__ __forceinline__ void store_tile_outputs(typename Tr::T* dst, const typename Tr::T* bias_s, const V (&v)[8],
                                                   int64_t co, int64_t cout, bool vec, const Requant& rq) {
  if constexpr (Tr::kQuantized)
    store_requantized(dst, v, rq, co, cout, vec);
  else
    store_outputs<Act>(dst, bias_s, v, co, cout, vec);
}

// Channel-split epilogue (cluster_reduce): bias, activation and store of the
// summed rows.
template <class Tr>
__device__ __forceinline__ void cluster_epilogue(PwAccumulator<Tr>& acc, float* scratch, float* partial,
                                                 const typename Tr::T* bias_s, const DwPwShape& s,
                                                 const DwPwEpilogue& epi, const DwPwPointers& p, const DwPwRun& run,
                                                 int64_t n, int64_t oy0, int64_t ox0, int64_t co0, int rank) {
  using T = typename Tr::T;
  const Requant rq = pw_requant(p, epi);
  with_activation(Tr::kQuantized ? int(kActNone) : epi.pw_activation, [&](auto kind) {
    cluster_reduce<Tr>(
        acc, scratch, partial, run.splits, rank,
        [&](int row, int col) {
          return oy0 + row / Tr::TW < s.ho && ox0 + row % Tr::TW < s.wo && co0 + col < s.cout;
        },
        [&](int row, int col, const auto& v) {
          const int64_t oy = oy0 + row / Tr::TW, ox = ox0 + row % Tr::TW, co = co0 + col;
          T* y = static_cast<T*>(p.y) + ((n * s.ho + oy) * s.wo + ox) * s.cout;
          store_tile_outputs<Tr, kind.value>(y + co, bias_s + col, v, co, s.cout, run.vec_y, rq);
        });
  });
}

template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kMinBlocks)
    dw_pw_fused_kernel(const DwPwShape s, const DwPwEpilogue epi, const DwPwPointers p, const DwPwRun run) {
  using T = typename Tr::T;
  extern __shared__ __align__(16) unsigned char smem[];
  const SmemPlan plan = make_smem_plan<Tr>(run);
  T* const in_s = reinterpret_cast<T*>(smem);
  T* const taps_s = reinterpret_cast<T*>(smem + plan.off_taps);
  T* const w_s = reinterpret_cast<T*>(smem + plan.off_w);
  T* const a_s = reinterpret_cast<T*>(smem + plan.off_a);
  constexpr int kInStage = Tr::kInStageBytes / sizeof(T), kTapsStage = Tr::kTapsStageBytes / sizeof(T);
  constexpr int kWStage = Tr::kWStageBytes / sizeof(T), kASlot = Tr::kASlotBytes / sizeof(T);

  // Pixel tiles of this block: first_tile, + tile_stride, ... (one unless the
  // grid is persistent). 32-bit tile decode (the launcher checks the tile
  // count fits): 64-bit division is a long software sequence on the GPU.
  const int tiles_w = int((s.wo + Tr::TW - 1) / Tr::TW), tiles_h = int((s.ho + Tr::TH - 1) / Tr::TH);
  const int rank = int(blockIdx.x) % run.splits;  // block's rank in its cluster
  const int first_tile = int(blockIdx.x) / run.splits, tile_stride = int(gridDim.x) / run.splits;
  const int my_tiles = (run.tiles - first_tile + tile_stride - 1) / tile_stride;
  struct Origin {
    int64_t n, oy0, ox0;
  };
  auto tile_origin = [&](int t) {
    const int tile = first_tile + t * tile_stride, image_tile = tile % (tiles_h * tiles_w);
    return Origin{tile / (tiles_h * tiles_w), int64_t(image_tile / tiles_w * Tr::TH),
                  int64_t(image_tile % tiles_w * Tr::TW)};
  };
  const int64_t co_tiles = (s.cout + Tr::TN - 1) / Tr::TN;
  const int64_t first_co_tile = int64_t(blockIdx.y) * run.passes;
  const int passes = int(co_tiles - first_co_tile < run.passes ? co_tiles - first_co_tile : run.passes);
  // This block's channel chunks (all of them without splits).
  const int chunk0 = rank * run.nchunks / run.splits;
  const int nchunks = (rank + 1) * run.nchunks / run.splits - chunk0;
  const int steps_per_tile = passes * nchunks, steps = my_tiles * steps_per_tile;
  // One set of taps / pointwise rows for every step: staged once, kept.
  const bool taps_resident = run.taps_stages == 1, w_resident = run.w_stages == 1;

  const T* dw = static_cast<const T*>(p.dw_kernel);
  const T* pw = static_cast<const T*>(p.pw_kernel);
  // Where a step is: its tile, channel-tile pass, chunk and ring buffer.
  // Advanced by one step at a time: decoding a step index costs several
  // integer divisions (Nsight Compute: a quarter of a deep layer's
  // instructions were the decode of the step being computed and of the one
  // being copied).
  struct Cursor {
    int step, tile, pass, chunk, buf;
    __device__ __forceinline__ void advance(int nchunks_, int passes_, int stages_) {
      ++step;
      if (++buf == stages_) buf = 0;
      if (++chunk == nchunks_) {
        chunk = 0;
        if (++pass == passes_) pass = 0, ++tile;
      }
    }
  };
  Cursor cur{0, 0, 0, 0, 0}, next = cur;
  const StageDims dims(s);
  const T* x = static_cast<const T*>(p.x);
  // Where next.tile's input copies come from (worked out once per tile).
  InputCopies<Tr> input;
  auto locate_input = [&](int t) {
    const Origin o = tile_origin(t);
    input.locate(x, dims, int(o.n), int(o.oy0) * Tr::S - int(s.pad_top), int(o.ox0) * Tr::S - int(s.pad_left));
  };
  locate_input(0);

  // Pass 0 of a tile stages input + taps + weights; later passes reuse the
  // resident A tiles and stage weights only. Every call commits one cp.async
  // group (empty past the last step or when all is resident), so "all but the
  // newest stages - 2 groups landed" always means "step landed".
  auto issue_next = [&]() {
    if (next.step < steps) {
      const int chunk = chunk0 + next.chunk;
      if (next.pass == 0) {
        input.stage(in_s + next.buf * kInStage, dims, chunk * Tr::KC, run.vec_x);
        if (!taps_resident || next.step == 0)
          stage_taps<Tr>(taps_s + (taps_resident ? 0 : next.buf) * kTapsStage, dw, static_cast<const T*>(p.dw_bias),
                         dims, chunk * Tr::KC, run.vec_x);
      }
      if (!w_resident || next.step == 0)
        stage_weights<Tr>(w_s + (w_resident ? 0 : next.buf) * kWStage, pw, static_cast<const T*>(p.pw_bias), dims,
                          chunk * Tr::KC, int(first_co_tile + next.pass) * Tr::TN, run.vec_w);
    }
    cp_async_commit();
    const int tile = next.tile;
    next.advance(nchunks, passes, run.stages);
    if (next.tile != tile && next.step < steps) locate_input(next.tile);
  };

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp % Tr::kWarpsM, wn = warp / Tr::kWarpsM;
  float* const scratch = reinterpret_cast<float*>(smem + plan.off_scratch) + warp * 16 * Tr::kScratchLd;
  PwAccumulator<Tr> acc;
  acc.zero();

  const int ahead = run.stages > 1 ? run.stages - 1 : 1;  // steps in flight
  for (int i = 0; i < ahead; ++i) issue_next();
  for (; cur.step < steps; cur.advance(nchunks, passes, run.stages)) {
    // Step `cur` has landed for this thread; the barrier makes it visible to
    // all and guarantees every warp is done with the buffers of the step
    // before, which the next copy overwrites.
    if (run.stages == 3)
      cp_async_wait<1>();
    else
      cp_async_wait<0>();
    __syncthreads();
    issue_next();
    const int chunk = chunk0 + cur.chunk;
    // A slot: a ring of one or two, or one per chunk (a_slots == nchunks > 2).
    T* a = a_s + (run.a_slots <= 2 ? cur.chunk & 1 : cur.chunk) * kASlot;
    const T* w = w_s + (w_resident ? 0 : cur.buf) * kWStage;
    if (cur.pass == 0) {
      depthwise_chunk<Tr>(in_s + cur.buf * kInStage, taps_s + (taps_resident ? 0 : cur.buf) * kTapsStage, a, s,
                          chunk * Tr::KC, epi.dw_activation, dw_requant(p, epi));
      __syncthreads();
    }
    acc.accumulate(a, w, wm, wn);
    if (cur.chunk + 1 < nchunks) continue;

    // Epilogue of this channel tile.
    const T* bias_s = w + Tr::KC * Tr::kLdB;
    const Origin o = tile_origin(cur.tile);
    if (run.splits > 1) {
      cluster_epilogue<Tr>(acc, scratch, reinterpret_cast<float*>(smem + plan.off_scratch + Tr::kScratchBytes),
                           bias_s, s, epi, p, run, o.n, o.oy0, o.ox0, first_co_tile * Tr::TN, rank);
      return;  // splits imply one tile and one channel tile per block
    }
    const int pix = wm * 16 + epilogue_row(lane);
    const int64_t oy = o.oy0 + pix / Tr::TW, ox = o.ox0 + pix % Tr::TW;
    const bool in_image = oy < s.ho && ox < s.wo;
    T* y = static_cast<T*>(p.y) + ((o.n * s.ho + oy) * s.wo + ox) * s.cout;
    with_activation(Tr::kQuantized ? int(kActNone) : epi.pw_activation, [&](auto kind) {
#pragma unroll
      for (int j = 0; j < Tr::kFragsN; ++j) {
        typename PwAccumulator<Tr>::Value v[8];
        acc.read(j, scratch, v);
        const int col = wn * Tr::kWarpN + j * 16 + epilogue_col(lane);
        const int64_t co = (first_co_tile + cur.pass) * Tr::TN + col;
        if (in_image && co < s.cout)
          store_tile_outputs<Tr, kind.value>(y + co, bias_s + col, v, co, s.cout, run.vec_y, pw_requant(p, epi));
      }
    });
    acc.zero();
  }
}

}  // namespace dw_pw_detail

template <typename T, int Math, int K, int S, int TN, int TH, int KC>
cudaError_t launch_dw_pw(const DwPwShape& s, const DwPwEpilogue& epi, const DwPwPointers& p,
                         const DwPwTileConfig& tile, cudaStream_t stream) {
  using Tr = dw_pw_detail::Traits<T, Math, K, S, TN, TH, KC>;
  constexpr auto kernel = dw_pw_detail::dw_pw_fused_kernel<Tr>;
  const int64_t tiles = s.n * ((s.ho + Tr::TH - 1) / Tr::TH) * ((s.wo + Tr::TW - 1) / Tr::TW);
  const int64_t co_tiles = (s.cout + TN - 1) / TN;
  if (tiles <= 0 || co_tiles <= 0) return cudaSuccess;  // empty output
  const int64_t nchunks = (s.c + Tr::KC - 1) / Tr::KC;
  if (tiles > INT_MAX / 8 || nchunks > (1 << 20)) return cudaErrorInvalidConfiguration;

  DeviceLimits limits;
  if (cudaError_t err = device_limits(&limits); err != cudaSuccess) return err;
  const int max_smem = limits.max_dynamic_smem;
  // Channel splits: a cluster of 2, 4 or 8 blocks (sm_90+), each with at
  // least one chunk, one channel tile and one pixel tile per block; otherwise none.
  int64_t splits = tile.channel_splits;
  if (splits != 2 && splits != 4 && splits != 8) splits = 1;
  if (!limits.clusters || splits > nchunks) splits = 1;
  int64_t passes = tile.cout_tiles_per_block < 1 || splits > 1 ? 1 : tile.cout_tiles_per_block;
  if (passes > co_tiles) passes = co_tiles;
  // Pixel tiles per block: 1 (a block per tile), k, or 0 = automatic: as many
  // as it takes for one wave of resident blocks to cover the output when the
  // block's taps and pointwise rows stay resident (one chunk, one pass),
  // otherwise one. Measured on an H100 (docs/benchmarks.md): walking tiles
  // takes 0.7-0.9x the time with resident weights, and gains nothing (up to
  // 1.5x slower: a deeper ring, fewer resident blocks) when every step
  // restages them.
  int64_t tiles_hint = splits > 1 ? 1 : tile.tiles_per_block;
  if (tiles_hint == 0 && (nchunks > 1 || passes > 1)) tiles_hint = 1;
  dw_pw_detail::DwPwRun run{};
  run.tiles = int(tiles);
  run.splits = int(splits);
  // The deepest copy ring (3 stages, fewer for short blocks) that fits; if
  // resident A tiles of a very deep layer do not fit at all, one tile per block.
  auto plan = [&](int64_t passes, int max_stages) {
    const int64_t chunks = (nchunks + splits - 1) / splits, steps = passes * chunks * (tiles_hint == 1 ? 1 : tiles);
    run.passes = int(passes);
    run.nchunks = int(nchunks);
    run.stages = int(steps < max_stages ? steps : max_stages);
    run.taps_stages = chunks == 1 ? 1 : run.stages;
    run.w_stages = chunks == 1 && passes == 1 ? 1 : run.stages;
    run.a_slots = int(passes > 1 ? nchunks : (chunks < 2 ? chunks : 2));
    run.own_scratch = tiles_hint != 1;
    return dw_pw_detail::make_smem_plan<Tr>(run).bytes;
  };
  int bytes = plan(passes, 3);
  if (bytes > max_smem) bytes = plan(passes, 2);
  if (bytes > max_smem && passes > 1) bytes = plan(passes = 1, 3);
  if (bytes > max_smem) bytes = plan(passes, 2);
  if (bytes > max_smem) return cudaErrorInvalidConfiguration;
  const int64_t groups = (co_tiles + passes - 1) / passes;
  if (groups > 65535) return cudaErrorInvalidConfiguration;
  if (cudaError_t err = allow_dynamic_smem<kernel>(bytes); err != cudaSuccess) return err;

  int64_t tiles_per_block = tiles_hint;
  if (tiles_per_block == 0) {
    int per_sm = 0;
    if (cudaError_t err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, Tr::kThreads, bytes);
        err != cudaSuccess)
      return err;
    const int64_t slots = int64_t(per_sm > 0 ? per_sm : 1) * limits.sm_count / groups;
    tiles_per_block = slots > 0 ? (tiles + slots - 1) / slots : tiles;
  }
  if (tiles_per_block < 1) tiles_per_block = 1;
  const int64_t blocks = (tiles + tiles_per_block - 1) / tiles_per_block;

  constexpr int V = Tr::kVec;
  // int8: no bias rows are staged, and the pointwise rows are the transposed
  // matrix's (C columns).
  constexpr bool kQuantized = Tr::kQuantized;
  run.vec_x = s.c % V == 0 && dw_pw_detail::aligned16(p.x) && dw_pw_detail::aligned16(p.dw_kernel) &&
              (kQuantized || dw_pw_detail::aligned16(p.dw_bias));
  run.vec_w = (kQuantized ? s.c : s.cout) % V == 0 && dw_pw_detail::aligned16(p.pw_kernel) &&
              (kQuantized || dw_pw_detail::aligned16(p.pw_bias));
  // int8: the epilogue's bias and multiplier loads take the 16-byte path too.
  run.vec_y = s.cout % 8 == 0 && dw_pw_detail::aligned16(p.y) &&
              (!kQuantized || (dw_pw_detail::aligned16(p.pw_bias) && dw_pw_detail::aligned16(p.pw_multiplier)));
  return launch_clustered(kernel, dim3(unsigned(blocks * splits), unsigned(groups)), Tr::kThreads, bytes,
                          int(splits), stream, s, epi, p, run);
}

}  // namespace jax_fcm

// Explicit instantiations for one element type, PW math, kernel size and
// stride: every (pixel-tile height, output-channel tile, channel chunk) that
// dispatch_dw_pw accepts (dw_pw_config_supported in dw_pw_dispatch.cu).
#define FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, TN, TH, KC)                                      \
  template cudaError_t jax_fcm::launch_dw_pw<T, MATH, K, S, TN, TH, KC>(                          \
      const jax_fcm::DwPwShape&, const jax_fcm::DwPwEpilogue&, const jax_fcm::DwPwPointers&,          \
      const jax_fcm::DwPwTileConfig&, cudaStream_t);
#define FCM_INSTANTIATE_DW_PW(T, MATH, K, S)             \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 32, 8, 32)   \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 64, 8, 32)   \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 128, 8, 32)  \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 160, 8, 32)  \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 192, 8, 32)  \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 64, 4, 32)   \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 128, 4, 32)  \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 192, 4, 32)
// 64-channel chunks (16-bit types only): 8x8 pixel tiles, tile_n >= 64.
// tile_n = 160 (8x8 tiles only: 4x8 would give warps 40 columns) is
// MobileNetV2's deepest Cout, 17 % of a 192 tile's GEMM and weight copies.
#define FCM_INSTANTIATE_DW_PW_WIDE(T, MATH, K, S)        \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 64, 8, 64)   \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 128, 8, 64)  \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 160, 8, 64)  \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 192, 8, 64)
