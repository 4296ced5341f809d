// Standalone pointwise (1x1) convolution on Hopper's warpgroup MMA (wgmma,
// sm_90a) for 16-bit types: y[M][Cout] = x[M][Cin] . w[Cin][Cout] + bias,
// then the activation. Same contract as pointwise_kernel.cuh; chosen by
// dispatch_pointwise for the deep layers (many input channels), where the
// mma.sync kernel ran at about half the tensor-core rate and lost to cuBLAS.
//
// A block owns 128 pixel rows and TN (64 or 128) output channels. Warp
// specialized: one producer thread walks the input channels in 64-channel
// steps, loading each step's x box and weight boxes with the copy engine
// (TMA, 128-byte swizzle: the layout wgmma reads, wgmma.cuh) into a ring of
// shared-memory slots, each with a "full" and an "empty" barrier; two
// consumer warpgroups (64 rows each) wait on a slot's full barrier, issue
// four k16 wgmmas, and release the slot once those have run. No block-wide
// barrier in the loop, and rows / channels past the matrix come back as
// zeros from the copy engine. The epilogue moves the fp32 accumulators through
// shared memory so that bias, activation and the stores run on 8 consecutive
// channels per thread (16-byte stores), as in the other kernels.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "activations.h"
#include "dynamic_smem.cuh"
#include "pointwise_params.h"
#include "pointwise_wgmma_launch.h"
#include "tma.cuh"
#include "wgmma.cuh"
#include "wgmma_epilogue.cuh"

namespace jax_fcm {
namespace pointwise_wgmma_detail {

template <typename T_, int TN_, int BlocksPerSm_>
struct Traits {
  using T = T_;
  static_assert(sizeof(T) == 2, "wgmma path: 16-bit element types");
  static_assert(TN_ == 64 || TN_ == 128, "wgmma N");
  static constexpr int TN = TN_;
  static constexpr int kConsumers = 2;                       // warpgroups multiplying, 64 rows each
  static constexpr int kConsumerThreads = 128 * kConsumers;  // warps 0-7; warp 8 is the producer
  static constexpr int kThreads = kConsumerThreads + 32;
  static constexpr int kTileM = 64 * kConsumers;
  static constexpr int kK = 64;                          // channels per step: one 128-byte swizzle row
  static constexpr int kABytes = kTileM * 128;           // x box [kTileM][64], swizzled
  static constexpr int kAtomBytes = kK * 128;            // weight box: 64 output channels x kK rows
  static constexpr int kBBytes = TN / 64 * kAtomBytes;   // TN / 64 boxes
  static constexpr int kStageBytes = kABytes + kBBytes;  // a multiple of 1024
  // One resident block with a deep ring, or two with half of it each (both
  // fit the registers: 90 per thread): a second block overlaps one's
  // prologue and epilogue with the other's steps, and 150-block grids on
  // 132 SMs run in one wave instead of two.
  static constexpr int kBlocksPerSm = BlocksPerSm_;
  static constexpr int kBudget = (BlocksPerSm_ == 1 ? 200 : 104) * 1024;
  static constexpr int kStages = kBudget / kStageBytes < 8 ? kBudget / kStageBytes : 8;
  static_assert(kStages >= 2, "ring");
  static constexpr int kScratchLd = kWgmmaScratchLd<TN>;  // epilogue rows (floats)
  static_assert(kTileM * kScratchLd * 4 <= kStages * kStageBytes, "the epilogue reuses the ring");
  // [header: bias (TN values), then 2 x kStages barriers][ring], the ring on a
  // 1024-byte boundary (the swizzle period).
  static constexpr int kHeaderBytes = 1024;
  static constexpr int kSmemBytes = kHeaderBytes + kStages * kStageBytes + 1024;  // + slack for alignment
  static_assert(TN * 2 <= 256 && 256 + 2 * kStages * 8 <= kHeaderBytes, "header: bias at 0, barriers at 256");
};

// Block (pixel tile blockIdx.x, channel tile blockIdx.y).
template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kBlocksPerSm)
    pointwise_wgmma_kernel(const __grid_constant__ CUtensorMap x_map, const __grid_constant__ CUtensorMap w_map,
                           const PointwiseShape s, const PointwisePointers p, const int activation, const int steps) {
#if FCM_WGMMA_AVAILABLE
  using T = typename Tr::T;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* const header = smem_raw + (1024 - shared_address(smem_raw) % 1024) % 1024;
  T* const bias_s = reinterpret_cast<T*>(header);
  uint64_t* const full = reinterpret_cast<uint64_t*>(header + 256);
  uint64_t* const empty = full + Tr::kStages;
  unsigned char* const ring = header + Tr::kHeaderBytes;
  const int64_t m0 = int64_t(blockIdx.x) * Tr::kTileM;
  const int rows = s.m - m0 < Tr::kTileM ? int(s.m - m0) : Tr::kTileM;
  const int cout = int(s.cout), co0 = int(blockIdx.y) * Tr::TN;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (threadIdx.x == 0) {
    for (int i = 0; i < Tr::kStages; ++i) {
      mbarrier_init(full + i, 1);                          // the producer's arrive (+ the copies' bytes)
      mbarrier_init(empty + i, Tr::kConsumerThreads / 32);  // one arrive per consumer warp
    }
    mbarrier_init_fence();
  }
  const T* const bias = static_cast<const T*>(p.bias);
  for (int c = threadIdx.x; c < Tr::TN; c += Tr::kThreads)
    bias_s[c] = co0 + c < cout ? bias[co0 + c] : Elem<T>::from_float(0.f);
  __syncthreads();

  if (warp == Tr::kConsumerThreads / 32) {  // the producer warp: one thread issues every copy
    if (lane == 0)
      for (int g = 0; g < steps; ++g) {
        const int slot = g % Tr::kStages;
        mbarrier_wait(empty + slot, (g / Tr::kStages & 1) ^ 1);  // consumers are done with it
        mbarrier_arrive_expect_tx(full + slot, Tr::kStageBytes);
        unsigned char* const stage = ring + slot * Tr::kStageBytes;
        tma_load_2d(stage, &x_map, g * Tr::kK, int(m0), full + slot);
#pragma unroll
        for (int a = 0; a < Tr::TN / 64; ++a)
          tma_load_2d(stage + Tr::kABytes + a * Tr::kAtomBytes, &w_map, co0 + 64 * a, g * Tr::kK, full + slot);
      }
    return;
  }

  const int warpgroup = threadIdx.x / 128;
  float acc[Tr::TN / 2];
#pragma unroll
  for (int i = 0; i < Tr::TN / 2; ++i) acc[i] = 0.f;
  wgmma_fence_operands(acc);
  for (int g = 0; g < steps; ++g) {
    const int slot = g % Tr::kStages;
    mbarrier_wait(full + slot, g / Tr::kStages & 1);  // the copies landed (async proxy: no fence needed)
    const uint32_t base = shared_address(ring + slot * Tr::kStageBytes);
    const uint32_t a = base + warpgroup * 64 * 128, b = base + Tr::kABytes;
    wgmma_fence();
#pragma unroll
    for (int k = 0; k < Tr::kK / 16; ++k)
      Wgmma<T, Tr::TN>::run(acc, wgmma_descriptor(a + k * 32, 16, 1024),
                            wgmma_descriptor(b + k * 16 * 128, Tr::kAtomBytes, 1024), 1);
    wgmma_commit();
    wgmma_wait<1>();  // step g - 1's wgmmas have run: release its slot
    wgmma_fence_operands(acc);
    if (g > 0 && lane == 0) mbarrier_arrive(empty + (g - 1) % Tr::kStages);
  }
  wgmma_wait<0>();
  wgmma_fence_operands(acc);
  // Every copy has been waited for and every wgmma has run in this warp; once
  // all consumer warps are here the ring becomes the epilogue's scratch.
  asm volatile("bar.sync 1, %0;\n" ::"n"(Tr::kConsumerThreads) : "memory");

  wgmma_store_tile<Tr::TN, Tr::kTileM, Tr::kConsumerThreads>(
      acc, reinterpret_cast<float*>(ring),
      [] { asm volatile("bar.sync 1, %0;\n" ::"n"(Tr::kConsumerThreads) : "memory"); },
      static_cast<T*>(p.y) + m0 * cout, bias_s, rows, co0, cout, activation);
#endif
}

}  // namespace pointwise_wgmma_detail

template <typename T, int TN, int BlocksPerSm>
cudaError_t launch_pointwise_wgmma(const PointwiseShape& s, const PointwisePointers& p, int activation,
                                   cudaStream_t stream) {
  using Tr = pointwise_wgmma_detail::Traits<T, TN, BlocksPerSm>;
  constexpr auto kernel = pointwise_wgmma_detail::pointwise_wgmma_kernel<Tr>;
  if (s.m == 0) return cudaSuccess;
  if (!pointwise_wgmma_operands_ok(s, p)) return cudaErrorInvalidValue;
  const int64_t m_tiles = (s.m + Tr::kTileM - 1) / Tr::kTileM, co_tiles = (s.cout + TN - 1) / TN;
  if (m_tiles > INT_MAX || co_tiles > 65535 || s.m > INT_MAX) return cudaErrorInvalidConfiguration;
  CUtensorMap x_map, w_map;
  if (!make_tensor_map_2d<T>(&x_map, p.x, uint64_t(s.m), uint64_t(s.cin), Tr::kTileM, 64) ||
      !make_tensor_map_2d<T>(&w_map, p.kernel, uint64_t(s.cin), uint64_t(s.cout), 64, 64))
    return cudaErrorNotSupported;
  const int steps = int((s.cin + Tr::kK - 1) / Tr::kK);
  if (cudaError_t err = allow_dynamic_smem<kernel>(Tr::kSmemBytes); err != cudaSuccess) return err;
  kernel<<<dim3(unsigned(m_tiles), unsigned(co_tiles)), Tr::kThreads, Tr::kSmemBytes, stream>>>(
      x_map, w_map, s, p, activation, steps);
  return cudaGetLastError();
}

}  // namespace jax_fcm

#define FCM_INSTANTIATE_POINTWISE_WGMMA_ONE(T, TN, PER_SM)                                                \
  template cudaError_t jax_fcm::launch_pointwise_wgmma<T, TN, PER_SM>(                                  \
      const jax_fcm::PointwiseShape&, const jax_fcm::PointwisePointers&, int, cudaStream_t);
#define FCM_INSTANTIATE_POINTWISE_WGMMA(T)      \
  FCM_INSTANTIATE_POINTWISE_WGMMA_ONE(T, 64, 1)  \
  FCM_INSTANTIATE_POINTWISE_WGMMA_ONE(T, 128, 1) \
  FCM_INSTANTIATE_POINTWISE_WGMMA_ONE(T, 64, 2)  \
  FCM_INSTANTIATE_POINTWISE_WGMMA_ONE(T, 128, 2)
