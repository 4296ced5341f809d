// Channel-split epilogue shared by the fused kernels: a cluster of `splits`
// blocks computed partial sums (fp32; int32 for int8) of one output tile over disjoint slices of
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
// The partial sums are the accumulators' values (fp32, or int32 for int8).
template <class Tr, class InRange, class Store>
__device__ __forceinline__ void cluster_reduce(PwAccumulator<Tr>& acc, float* scratch, float* partial_words,
                                               int splits, int rank, InRange&& in_range, Store&& store) {
  using Value = typename PwAccumulator<Tr>::Value;
  Value* const partial = reinterpret_cast<Value*>(partial_words);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  namespace cg = cooperative_groups;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp % Tr::kWarpsM, wn = warp / Tr::kWarpsM;
  constexpr int kM = FragsM<Tr>::value;
#pragma unroll
  for (int i = 0; i < kM; ++i)
#pragma unroll
    for (int j = 0; j < Tr::kFragsN; ++j) {
      Value v[8];
      acc.read(j, scratch, v, i);
      const int row = (wm * kM + i) * 16 + epilogue_row(lane);
      Value* dst = partial + row * Tr::kPartialLd + wn * Tr::kWarpN + j * 16 + epilogue_col(lane);
      store8_words(dst, v);
    }
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  constexpr int kGroups = Tr::TN / 8;  // 8-channel groups per pixel row
  const int rows = Tr::kTileP / splits;
  for (int item = threadIdx.x; item < rows * kGroups; item += Tr::kThreads) {
    const int row = rank * rows + item / kGroups, col = item % kGroups * 8;
    if (!in_range(row, col)) continue;
    Value v[8] = {};
    for (int r = 0; r < splits; ++r) {
      Value part[8];
      load8_words(cluster.map_shared_rank(partial, r) + row * Tr::kPartialLd + col, part);
#pragma unroll
      for (int e = 0; e < 8; ++e) v[e] += part[e];
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
