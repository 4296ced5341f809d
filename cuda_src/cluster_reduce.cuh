// Channel-split epilogue shared by the fused kernels: a cluster of `splits`
// blocks computed fp32 partial sums of one output tile over disjoint slices of
// the channels. Every block parks its tile in its own shared memory; after a
// cluster barrier, each block sums its share of the rows over all blocks
// (distributed shared memory) and hands the sums to the caller's store. A
// second barrier keeps every block's tile alive until all have read it.
#pragma once

#include <cooperative_groups.h>

#include "dw_pw_pointwise.cuh"

namespace jax_fcm {
namespace dw_pw_detail {

// in_range(row, col): whether tile row (pixel) and 8-channel group col are
// stored at all; store(row, col, v): v = the 8 summed channels.
template <class Tr, class InRange, class Store>
__device__ __forceinline__ void cluster_reduce(PwAccumulator<Tr>& acc, float* scratch, float* partial, int splits,
                                               int rank, InRange&& in_range, Store&& store) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  namespace cg = cooperative_groups;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp % Tr::kWarpsM, wn = warp / Tr::kWarpsM;
  constexpr int kM = FragsM<Tr>::value;
#pragma unroll
  for (int i = 0; i < kM; ++i)
#pragma unroll
    for (int j = 0; j < Tr::kFragsN; ++j) {
      float v[8];
      acc.read(j, scratch, v, i);
      const int row = (wm * kM + i) * 16 + epilogue_row(lane);
      float* dst = partial + row * Tr::kPartialLd + wn * Tr::kWarpN + j * 16 + epilogue_col(lane);
      reinterpret_cast<float4*>(dst)[0] = make_float4(v[0], v[1], v[2], v[3]);
      reinterpret_cast<float4*>(dst)[1] = make_float4(v[4], v[5], v[6], v[7]);
    }
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  constexpr int kGroups = Tr::TN / 8;  // 8-channel groups per pixel row
  const int rows = Tr::kTileP / splits;
  for (int item = threadIdx.x; item < rows * kGroups; item += Tr::kThreads) {
    const int row = rank * rows + item / kGroups, col = item % kGroups * 8;
    if (!in_range(row, col)) continue;
    float v[8] = {};
    for (int r = 0; r < splits; ++r) {
      const float4* src = reinterpret_cast<const float4*>(cluster.map_shared_rank(partial, r) + row * Tr::kPartialLd + col);
      const float4 lo = src[0], hi = src[1];
      v[0] += lo.x, v[1] += lo.y, v[2] += lo.z, v[3] += lo.w;
      v[4] += hi.x, v[5] += hi.y, v[6] += hi.z, v[7] += hi.w;
    }
    store(row, col, v);
  }
  cluster.sync();
#else
  __trap();  // the launchers never ask for clusters below sm_90
#endif
}

}  // namespace dw_pw_detail
}  // namespace jax_fcm
