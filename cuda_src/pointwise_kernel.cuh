// Standalone pointwise (1x1) convolution, NHWC, + bias + activation: the GEMM
// y[M][Cout] = x[M][Cin] . w[Cin][Cout] over the M = N*H*W pixels, for the
// 1x1 layers that stay unfused (expansions before a depthwise conv, heads,
// ConvNeXt/MobileViT MLPs).
//
// Built from the fused kernel's pointwise stage: a block owns 64 consecutive
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

#include "activations.h"
#include "async_copy.cuh"
#include "cluster_reduce.cuh"
#include "dw_pw_launch.h"
#include "dw_pw_pointwise.cuh"
#include "dw_pw_stage.cuh"
#include "dw_pw_traits.cuh"
#include "dynamic_smem.cuh"
#include "pointwise_launch.h"

namespace jax_fcm {
namespace pointwise_detail {

// The fused kernel's GEMM geometry: 64 pixel rows (8 x 8, read as a flat
// range), TN columns, KC-channel chunks; the depthwise fields (K = S = 1) are unused.
template <typename T, int Math, int TN, int KC>
using Traits = dw_pw_detail::Traits<T, Math, 1, 1, TN, 8, KC>;

// Shared memory: [bias: TN] [epilogue scratch] [ring: stages x (A rows, weight
// rows)]; with channel splits, the cluster's fp32 partial tile reuses the
// ring once the last chunk is multiplied.
template <class Tr>
struct Layout {
  using T = typename Tr::T;
  static constexpr int kScratch = Tr::TN * int(sizeof(T));  // a multiple of 16 bytes
  static constexpr int kRing = kScratch + Tr::kScratchBytes;
  static constexpr int kA = Tr::kASlotBytes;                // [64][kLdA]
  static constexpr int kW = Tr::KC * Tr::kLdB * int(sizeof(T));  // [KC][kLdB]
  static constexpr int kStage = kA + kW;
  static constexpr int bytes(int stages, int splits) {
    const int ring = stages * kStage;
    return kRing + (splits > 1 && Tr::kPartialBytes > ring ? Tr::kPartialBytes : ring);
  }
};

struct Run {
  int nchunks;  // ceil(Cin / KC)
  int splits;   // blocks per cluster splitting the chunks (1: no cluster)
  int stages;   // ring depth: 1..3, at most a block's chunk count
  bool vec_x, vec_w, vec_y;  // 16-byte paths allowed (alignment and channel counts)
};

// Block (pixel tile blockIdx.x / splits, channel tile blockIdx.y); rank
// blockIdx.x % splits of its cluster takes its slice of the chunks.
template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kMinBlocks)
    pointwise_kernel(const PointwiseShape s, const PointwisePointers p, const int activation, const Run run) {
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
  const T* const x = static_cast<const T*>(p.x) + m0 * cin;  // 64-bit base; in-tile offsets are 32-bit
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
      dw_pw_detail::stage_matrix<Tr, Tr::KC, Tr::kLdA, false>(a_stage(issue_buf), x, x, Tr::kTileP, 0, rows, c0,
                                                              cin, run.vec_x);
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
    if (run.stages == 3)
      cp_async_wait<1>();
    else
      cp_async_wait<0>();
    __syncthreads();
    issue_next();
    // x is staged as it is: float32 rows are rounded to TF32 on the way into
    // the tensor cores (the fused kernel's depthwise stage stores them rounded).
    acc.template accumulate<Tr::kTf32>(a_stage(buf), w_stage(buf), wm, wn);
    if (++buf == run.stages) buf = 0;
  }

  float* const scratch = reinterpret_cast<float*>(smem + L::kScratch) + warp * 16 * Tr::kScratchLd;
  T* const y = static_cast<T*>(p.y) + m0 * cout;
  with_activation(activation, [&](auto kind) {
    auto store = [&](int row, int col, const float(&v)[8]) {
      dw_pw_detail::store_outputs<kind.value>(y + row * cout + co0 + col, bias_s + col, v, co0 + col, cout,
                                              run.vec_y);
    };
    if (run.splits > 1) {
      cp_async_wait<0>();
      __syncthreads();  // every warp is done with the ring the partial tile reuses
      dw_pw_detail::cluster_reduce<Tr>(
          acc, scratch, reinterpret_cast<float*>(ring), run.splits, rank,
          [&](int row, int col) { return row < rows && co0 + col < cout; }, store);
      return;
    }
    const int row = wm * 16 + dw_pw_detail::epilogue_row(lane);
#pragma unroll
    for (int j = 0; j < Tr::kFragsN; ++j) {
      float v[8];
      acc.read(j, scratch, v);
      const int col = wn * Tr::kWarpN + j * 16 + dw_pw_detail::epilogue_col(lane);
      if (row < rows && co0 + col < cout) store(row, col, v);
    }
  });
}

}  // namespace pointwise_detail

template <typename T, int Math, int TN, int KC>
cudaError_t launch_pointwise(const PointwiseShape& s, const PointwisePointers& p, int activation, int splits,
                             cudaStream_t stream) {
  using Tr = pointwise_detail::Traits<T, Math, TN, KC>;
  using L = pointwise_detail::Layout<Tr>;
  constexpr auto kernel = pointwise_detail::pointwise_kernel<Tr>;
  if (s.m == 0) return cudaSuccess;  // empty output
  const int64_t m_tiles = (s.m + Tr::kTileP - 1) / Tr::kTileP, co_tiles = (s.cout + TN - 1) / TN;
  const int64_t nchunks = (s.cin + KC - 1) / KC;
  if (splits != 2 && splits != 4 && splits != 8) splits = 1;
  if (splits > nchunks) splits = 1;
  if (m_tiles * splits > INT_MAX || co_tiles > 65535 || nchunks > (1 << 20)) return cudaErrorInvalidConfiguration;
  pointwise_detail::Run run{};
  run.nchunks = int(nchunks);
  run.splits = splits;
  const int64_t steps = (nchunks + splits - 1) / splits;  // the most any rank walks
  run.stages = int(steps < 3 ? steps : 3);
  constexpr int V = Tr::kVec;
  run.vec_x = s.cin % V == 0 && dw_pw_detail::aligned16(p.x);
  run.vec_w = s.cout % V == 0 && dw_pw_detail::aligned16(p.kernel) && dw_pw_detail::aligned16(p.bias);
  run.vec_y = s.cout % 8 == 0 && dw_pw_detail::aligned16(p.y);
  const int bytes = L::bytes(run.stages, splits);
  if (cudaError_t err = allow_dynamic_smem<kernel>(bytes); err != cudaSuccess) return err;

  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(unsigned(m_tiles * splits), unsigned(co_tiles));
  config.blockDim = dim3(Tr::kThreads);
  config.dynamicSmemBytes = size_t(bytes);
  config.stream = stream;
  cudaLaunchAttribute cluster;
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = unsigned(splits);
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  config.attrs = &cluster;
  config.numAttrs = splits > 1 ? 1 : 0;
  if (cudaError_t err = cudaLaunchKernelEx(&config, kernel, s, p, activation, run); err != cudaSuccess) return err;
  return cudaGetLastError();
}

}  // namespace jax_fcm

// Explicit instantiations for one element type and PW math: every channel tile
// (and, for 16-bit types, both chunk widths) that dispatch_pointwise picks.
#define FCM_INSTANTIATE_POINTWISE_ONE(T, MATH, TN, KC)                                                          \
  template cudaError_t jax_fcm::launch_pointwise<T, MATH, TN, KC>(                                             \
      const jax_fcm::PointwiseShape&, const jax_fcm::PointwisePointers&, int, int, cudaStream_t);
#define FCM_INSTANTIATE_POINTWISE(T, MATH)        \
  FCM_INSTANTIATE_POINTWISE_ONE(T, MATH, 32, 32)  \
  FCM_INSTANTIATE_POINTWISE_ONE(T, MATH, 64, 32)  \
  FCM_INSTANTIATE_POINTWISE_ONE(T, MATH, 128, 32)
#define FCM_INSTANTIATE_POINTWISE_WIDE(T, MATH)   \
  FCM_INSTANTIATE_POINTWISE_ONE(T, MATH, 64, 64)  \
  FCM_INSTANTIATE_POINTWISE_ONE(T, MATH, 128, 64)
