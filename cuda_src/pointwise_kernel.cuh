// Standalone pointwise (1x1) convolution, NHWC, + bias + activation: the GEMM
// y[M][Cout] = x[M][Cin] . w[Cin][Cout] over the M = N*H*W pixels, for the
// 1x1 layers that stay unfused (expansions before a depthwise conv, heads,
// ConvNeXt/MobileViT MLPs). The same kernel runs jax_fcm.conv2d: there the
// A operand's rows are the output pixels' windows, gathered by another
// ASource (conv2d_kernel.cuh), and K = kh*kw*Cin.
//
// Built from the fused kernel's pointwise stage: a block owns 128 consecutive
// pixels (a flat row range: no 8x8 spatial tile, so 7x7 and 14x14 maps waste
// no rows) and TN output channels; it walks the input channels in chunks of
// KC through a ring of up to 3 cp.async stages (input rows and weight rows of
// chunk i+1 and i+2 in flight while chunk i is multiplied), and accumulates
// in fp32 registers on tensor cores (bf16/fp16, TF32 for float32 at default
// precision; FFMA at HIGHEST). Small M (N = 1, 7x7 or 14x14 maps) gives too
// few blocks to fill the GPU: then a cluster of 2-8 blocks splits the input
// channels and adds its fp32 partial sums through distributed shared memory
// (the fused kernel's cluster_reduce), so no partial sum touches global memory.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <type_traits>

#include "activations.h"
#include "async_copy.cuh"
#include "cluster_launch.cuh"
#include "cluster_reduce.cuh"
#include "dw_pw_launch.h"
#include "dw_pw_pointwise.cuh"
#include "dw_pw_stage.cuh"
#include "dynamic_smem.cuh"
#include "pointwise_launch.h"

namespace jax_fcm {
namespace pointwise_detail {

// Block tile: TP = 128 or 64 pixel rows x TN output channels; 8 warps, each
// 32 channels wide (16 for a 64 x 32 tile) and the rest along the rows: warp
// tiles of 64 x 32 (128 x 128 block), 32 x 32 (128 x 64, 64 x 128) or
// 16 x 32, so each B fragment feeds up to 4 MMAs. (The fused kernel's 16-row
// warp tiles with 64-row blocks ran deep layers at 0.3-0.6x XLA on the H100:
// more shared-memory loads per MMA, and every weight chunk re-read per 64
// pixels. 64-row blocks stay for small layers, where 128 rows would leave
// too few blocks to fill the GPU.)
template <typename T_, int Math, int TP, int TN_, int KC_>
struct Traits {
  using T = T_;
  static constexpr int TN = TN_, KC = KC_;
  static constexpr bool kTensorCores = !(std::is_same<T, float>::value && Math == kPwMathFp32);
  static constexpr bool kTf32 = std::is_same<T, float>::value && kTensorCores;
  static constexpr int kThreads = 256, kWarps = kThreads / 32;
  static constexpr int kTileP = TP;                      // pixel rows per block
  static constexpr int kWarpN = TP == 64 && TN == 32 ? 16 : 32, kFragsN = kWarpN / 16;
  static constexpr int kWarpsN = TN / kWarpN, kWarpsM = kWarps / kWarpsN;
  static constexpr int kFragsM = kTileP / 16 / kWarpsM;  // 16-row groups per warp
  static constexpr int kVec = 16 / sizeof(T);            // elements per 16-byte copy
  static constexpr int kLdA = KC + kVec;                 // rows padded by 16 B: conflict-free ldmatrix
  static constexpr int kLdB = TN + 8;                    // as in the fused kernel (dw_pw_traits.cuh)
  static constexpr int kScratchLd = 20;                  // epilogue scratch row (floats)
  static constexpr int kScratchBytes = kWarps * 16 * kScratchLd * 4;
  static constexpr int kPartialLd = TN + 4;              // cluster partial-sum rows (floats)
  static constexpr int kPartialBytes = kTileP * kPartialLd * 4;
  static constexpr int kASlotBytes = kTileP * kLdA * int(sizeof(T));
  // Two resident blocks (a 128-register cap) hold the 64 accumulators of a
  // 128 x 128 tile; tiles with at most 16 per thread leave room for three.
  static constexpr int kMinBlocks = kTileP * TN / kThreads <= 16 ? 3 : 2;
  static constexpr int kMaxStages = 4;
  static_assert(TN % kWarpN == 0 && kWarps % kWarpsN == 0 && kTileP % (16 * kWarpsM) == 0, "warp tiling");
  static_assert(KC % 16 == 0 && KC % kVec == 0 && TN % kVec == 0, "16-byte copies and MMA steps must tile");
};

// Shared memory: [bias: TN] [ring: stages x (A rows, weight rows)]; once the
// last chunk is multiplied, the epilogue scratch (and with channel splits the
// cluster's fp32 partial tile) reuses the ring.
template <class Tr>
struct Layout {
  using T = typename Tr::T;
  static constexpr int kRing = Tr::TN * int(sizeof(T));  // a multiple of 16 bytes
  static constexpr int kA = Tr::kASlotBytes;             // [128][kLdA]
  static constexpr int kW = Tr::KC * Tr::kLdB * int(sizeof(T));  // [KC][kLdB]
  static constexpr int kStage = kA + kW;
  static constexpr int bytes(int stages, int splits) {
    const int ring = stages * kStage, epilogue = Tr::kScratchBytes + (splits > 1 ? Tr::kPartialBytes : 0);
    return kRing + (ring > epilogue ? ring : epilogue);
  }
};

// The A operand of a pointwise call: pixel rows m0 .. m0 + rows of x
// ([M][K], K = Cin), chunk k0 .. k0 + KC at a time. (An ASource makes a
// per-tile Tile<Tr> that stages one chunk of the tile's A rows into shared
// memory as [kTileP][kLdA], zeros past the tile's rows and past K.)
struct PixelRows {
  static bool vectorizable(const void* x, int64_t k, int vec) { return k % vec == 0 && aligned16(x); }

  template <class Tr>
  struct Tile {
    using T = typename Tr::T;
    const T* x;  // the tile's first row (64-bit base; in-tile offsets are 32-bit)
    int rows;
    __device__ Tile(const PixelRows&, const void* x_all, int64_t m0, int rows_, int k)
        : x(static_cast<const T*>(x_all) + m0 * k), rows(rows_) {}
    __device__ __forceinline__ void stage(T* a_s, int k0, int k, bool vec) const {
      dw_pw_detail::stage_matrix<Tr, Tr::KC, Tr::kLdA, false>(a_s, x, x, Tr::kTileP, 0, rows, k0, k, vec);
    }
  };
};

struct Run {
  int nchunks;  // ceil(Cin / KC)
  int splits;   // blocks per cluster splitting the chunks (1: no cluster)
  int stages;   // ring depth: 1..4, at most a block's chunk count
  bool vec_x, vec_w, vec_y;  // 16-byte paths allowed (alignment and channel counts)
};

// Block (pixel tile blockIdx.x / splits, channel tile blockIdx.y); rank
// blockIdx.x % splits of its cluster takes its slice of the chunks.
template <class Tr, class ASource>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kMinBlocks)
    pointwise_kernel(const PointwiseShape s, const PointwisePointers p, const ASource a_source, const int activation,
                     const Run run) {
  using T = typename Tr::T;
  using L = Layout<Tr>;
  extern __shared__ __align__(16) unsigned char smem[];
  T* const bias_s = reinterpret_cast<T*>(smem);
  unsigned char* const ring = smem + L::kRing;
  const int rank = int(blockIdx.x) % run.splits;
  const int64_t m0 = int64_t(blockIdx.x / run.splits) * Tr::kTileP;
  const int rows = s.m - m0 < Tr::kTileP ? int(s.m - m0) : Tr::kTileP;
  const int cin = int(s.cin), cout = int(s.cout), co0 = int(blockIdx.y) * Tr::TN;
  const int chunk0 = rank * run.nchunks / run.splits;
  const int steps = (rank + 1) * run.nchunks / run.splits - chunk0;
  const typename ASource::template Tile<Tr> a_tile(a_source, p.x, m0, rows, cin);
  const T* const w = static_cast<const T*>(p.kernel);
  auto a_stage = [&](int buf) { return reinterpret_cast<T*>(ring + buf * L::kStage); };
  auto w_stage = [&](int buf) { return reinterpret_cast<T*>(ring + buf * L::kStage + L::kA); };

  // The block's bias columns travel with the first chunk's copies.
  dw_pw_detail::stage_matrix<Tr, Tr::TN, Tr::TN>(bias_s, w, static_cast<const T*>(p.bias), 0, 0, 0, co0, cout,
                                                 run.vec_w);
  // Every call commits one group (empty past the last step), so "all but the
  // newest stages - 2 groups landed" always means "this step landed".
  int issue_step = 0, issue_buf = 0;
  auto issue_next = [&]() {
    if (issue_step < steps) {
      const int c0 = (chunk0 + issue_step) * Tr::KC;
      a_tile.stage(a_stage(issue_buf), c0, cin, run.vec_x);
      dw_pw_detail::stage_matrix<Tr, Tr::TN, Tr::kLdB, false>(w_stage(issue_buf), w, w, Tr::KC, c0, cin, co0, cout,
                                                              run.vec_w);
    }
    cp_async_commit();
    ++issue_step;
    if (++issue_buf == run.stages) issue_buf = 0;
  };

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp % Tr::kWarpsM, wn = warp / Tr::kWarpsM;
  dw_pw_detail::PwAccumulator<Tr> acc;
  acc.zero();
  const int ahead = run.stages > 1 ? run.stages - 1 : 1;  // steps in flight
  for (int i = 0; i < ahead; ++i) issue_next();
  for (int step = 0, buf = 0; step < steps; ++step) {
    // This step has landed for this thread; the barrier makes it visible to
    // all and guarantees every warp is done with the buffer the next copy
    // overwrites (the previous step's).
    switch (run.stages) {
      case 4: cp_async_wait<2>(); break;
      case 3: cp_async_wait<1>(); break;
      default: cp_async_wait<0>();
    }
    __syncthreads();
    issue_next();
    // x is staged as it is: float32 rows are rounded to TF32 on the way into
    // the tensor cores (the fused kernel's depthwise stage stores them rounded).
    acc.template accumulate<Tr::kTf32>(a_stage(buf), w_stage(buf), wm, wn);
    if (++buf == run.stages) buf = 0;
  }

  // The ring becomes the epilogue's scratch: no copy may be in flight and
  // every warp must be done with the last chunk.
  cp_async_wait<0>();
  __syncthreads();
  float* const scratch = reinterpret_cast<float*>(ring) + warp * 16 * Tr::kScratchLd;
  T* const y = static_cast<T*>(p.y) + m0 * cout;
  with_activation(activation, [&](auto kind) {
    auto store = [&](int row, int col, const float(&v)[8]) {
      dw_pw_detail::store_outputs<kind.value>(y + row * cout + co0 + col, bias_s + col, v, co0 + col, cout,
                                              run.vec_y);
    };
    if (run.splits > 1) {
      dw_pw_detail::cluster_reduce<Tr>(
          acc, scratch, reinterpret_cast<float*>(ring + Tr::kScratchBytes), run.splits, rank,
          [&](int row, int col) { return row < rows && co0 + col < cout; }, store);
      return;
    }
#pragma unroll
    for (int i = 0; i < Tr::kFragsM; ++i)
#pragma unroll
      for (int j = 0; j < Tr::kFragsN; ++j) {
        float v[8];
        acc.read(j, scratch, v, i);
        const int row = (wm * Tr::kFragsM + i) * 16 + dw_pw_detail::epilogue_row(lane);
        const int col = wn * Tr::kWarpN + j * 16 + dw_pw_detail::epilogue_col(lane);
        if (row < rows && co0 + col < cout) store(row, col, v);
      }
  });
}

// Launches the GEMM kernel over A rows from a_source (s.cin: the K extent).
template <typename T, int Math, int TP, int TN, int KC, class ASource>
cudaError_t launch_gemm(const PointwiseShape& s, const PointwisePointers& p, const ASource& a_source, int activation,
                        int splits, cudaStream_t stream) {
  using Tr = Traits<T, Math, TP, TN, KC>;
  using L = Layout<Tr>;
  constexpr auto kernel = pointwise_kernel<Tr, ASource>;
  if (s.m == 0) return cudaSuccess;  // empty output
  const int64_t m_tiles = (s.m + Tr::kTileP - 1) / Tr::kTileP, co_tiles = (s.cout + TN - 1) / TN;
  const int64_t nchunks = (s.cin + KC - 1) / KC;
  if (splits != 2 && splits != 4 && splits != 8) splits = 1;
  if (splits > nchunks) splits = 1;
  if (m_tiles * splits > INT_MAX || co_tiles > 65535 || nchunks > (1 << 20)) return cudaErrorInvalidConfiguration;
  Run run{};
  run.nchunks = int(nchunks);
  run.splits = splits;
  const int64_t steps = (nchunks + splits - 1) / splits;  // the most any rank walks
  // The deepest ring up to 4 stages that leaves room for two resident blocks
  // (Hopper: 228 KB per SM): a deep layer's block waits on the copies of its
  // next chunks, not on arithmetic.
  int stages = Tr::kMaxStages;
  while (stages > 3 && L::bytes(stages, splits) > 110 * 1024) --stages;
  run.stages = int(steps < stages ? steps : stages);
  constexpr int V = Tr::kVec;
  run.vec_x = a_source.vectorizable(p.x, s.cin, V);
  run.vec_w = s.cout % V == 0 && dw_pw_detail::aligned16(p.kernel) && dw_pw_detail::aligned16(p.bias);
  run.vec_y = s.cout % 8 == 0 && dw_pw_detail::aligned16(p.y);
  const int bytes = L::bytes(run.stages, splits);
  if (cudaError_t err = allow_dynamic_smem<kernel>(bytes); err != cudaSuccess) return err;

  return launch_clustered(kernel, dim3(unsigned(m_tiles * splits), unsigned(co_tiles)), Tr::kThreads, bytes, splits,
                          stream, s, p, a_source, activation, run);
}

}  // namespace pointwise_detail

template <typename T, int Math, int TP, int TN, int KC>
cudaError_t launch_pointwise(const PointwiseShape& s, const PointwisePointers& p, int activation, int splits,
                             cudaStream_t stream) {
  return pointwise_detail::launch_gemm<T, Math, TP, TN, KC>(s, p, pointwise_detail::PixelRows{}, activation, splits,
                                                            stream);
}

}  // namespace jax_fcm

// Every block tile the GEMM's dispatch picks (gemm_tile_dispatch.h), as
// ONE(T, MATH, TP, TN, KC) lines: 32-channel chunks, and (16-bit types) the
// 64-channel chunks of the wider tiles.
#define FCM_GEMM_TILES_ROWS(ONE, T, MATH, TP) ONE(T, MATH, TP, 32, 32) ONE(T, MATH, TP, 64, 32) ONE(T, MATH, TP, 128, 32)
#define FCM_GEMM_TILES(ONE, T, MATH) FCM_GEMM_TILES_ROWS(ONE, T, MATH, 64) FCM_GEMM_TILES_ROWS(ONE, T, MATH, 128)
#define FCM_GEMM_TILES_WIDE(ONE, T, MATH) \
  ONE(T, MATH, 64, 64, 64) ONE(T, MATH, 64, 128, 64) ONE(T, MATH, 128, 64, 64) ONE(T, MATH, 128, 128, 64)

// Explicit instantiations of the pointwise launcher for one element type and PW math.
#define FCM_INSTANTIATE_POINTWISE_ONE(T, MATH, TP, TN, KC)                                                      \
  template cudaError_t jax_fcm::launch_pointwise<T, MATH, TP, TN, KC>(                                         \
      const jax_fcm::PointwiseShape&, const jax_fcm::PointwisePointers&, int, int, cudaStream_t);
#define FCM_INSTANTIATE_POINTWISE(T, MATH) FCM_GEMM_TILES(FCM_INSTANTIATE_POINTWISE_ONE, T, MATH)
#define FCM_INSTANTIATE_POINTWISE_WIDE(T, MATH) FCM_GEMM_TILES_WIDE(FCM_INSTANTIATE_POINTWISE_ONE, T, MATH)
