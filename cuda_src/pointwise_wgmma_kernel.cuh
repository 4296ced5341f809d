// Standalone pointwise (1x1) convolution on Hopper's warpgroup MMA (wgmma,
// sm_90a) for 16-bit types: y[M][Cout] = x[M][Cin] . w[Cin][Cout] + bias,
// then the activation. Same contract as pointwise_kernel.cuh; chosen by
// dispatch_pointwise for the deep layers (many input channels), where the
// mma.sync kernel ran at about half the tensor-core rate and lost to cuBLAS.
//
// A block of 1 or 2 warpgroups owns 64 pixel rows per warpgroup and TN (64
// or 128) output channels. It walks the input channels in 64-channel steps
// through a ring of Stages shared-memory slots filled by cp.async in the
// 128-byte-swizzled layouts wgmma reads (wgmma.cuh), Stages - 2 steps ahead;
// each warpgroup issues four k16 wgmmas per step and lets one step's group
// run while the next is issued. The epilogue moves the fp32 accumulators
// through shared memory so that bias, activation and the stores run on 8
// consecutive channels per thread (16-byte stores).
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "activations.h"
#include "async_copy.cuh"
#include "dw_pw_pointwise.cuh"
#include "dw_pw_stage.cuh"
#include "dynamic_smem.cuh"
#include "pointwise_params.h"
#include "wgmma.cuh"

namespace jax_fcm {
namespace pointwise_wgmma_detail {

template <typename T_, int Warpgroups, int TN_>
struct Traits {
  using T = T_;
  static_assert(sizeof(T) == 2, "wgmma path: 16-bit element types");
  static_assert(TN_ == 64 || TN_ == 128, "wgmma N");
  static constexpr int TN = TN_;
  static constexpr int kThreads = 128 * Warpgroups, kTileM = 64 * Warpgroups;
  static constexpr int kK = 64;                          // channels per step: one 128-byte swizzle row
  static constexpr int kABytes = kTileM * 128;           // [kTileM][64], swizzled
  static constexpr int kAtomBytes = kK * 128;            // 64 output channels x kK rows
  static constexpr int kBBytes = TN / 64 * kAtomBytes;   // TN / 64 atoms
  static constexpr int kStageBytes = kABytes + kBBytes;  // a multiple of 1024
  // One resident block of 2 warpgroups (deep layers: few, long blocks), two
  // of 1; as many ring slots as that leaves room for, at most 6 (4 copy
  // steps ahead of the multiplied one, plus the two the tensor cores may
  // still read). H100 (bf16, the shapes of docs/benchmarks.md): the fastest
  // of the budgets tried; a 1-warpgroup block with 6 slots ran 1.6x slower.
  static constexpr int kBudget = Warpgroups == 2 ? 200 * 1024 : 100 * 1024;
  static constexpr int kStages = kBudget / kStageBytes < 6 ? kBudget / kStageBytes : 6;
  static_assert(kStages >= 3, "ring");
  static constexpr int kAhead = kStages - 2;
  static constexpr int kScratchLd = TN + 8;  // epilogue rows (floats)
  static constexpr int kRingBytes = kStages * kStageBytes;
  static_assert(kTileM * kScratchLd * 4 <= kRingBytes, "the epilogue reuses the ring");
  static constexpr int kBiasBytes = 1024;  // TN values, padded so the ring stays 1024-aligned
  static constexpr int kSmemBytes = kBiasBytes + kRingBytes + 1024;  // + slack to align the ring
};

struct Run {
  int steps;  // ceil(Cin / 64)
};

// Copies step `step`'s x rows and w rows into ring slot `slot` (zeros past the
// matrix edges: rows past M, channels past Cin or Cout). Cin and Cout are
// multiples of 8 and the pointers 16-byte aligned (the launcher checks), so
// every 16-byte chunk is wholly inside or outside.
template <class Tr>
__device__ __forceinline__ void stage_step(unsigned char* slot, const typename Tr::T* x, const typename Tr::T* w,
                                           int rows, int cin, int cout, int co0, int step) {
  const int k0 = step * Tr::kK;
  constexpr int kAChunks = Tr::kTileM * 8, kBChunks = Tr::kK * Tr::TN / 8;
#pragma unroll
  for (int i = threadIdx.x; i < kAChunks; i += Tr::kThreads) {
    const int row = i / 8, chunk = i % 8, k = k0 + chunk * 8;
    const bool valid = row < rows && k < cin;
    cp_async16(slot + swizzle128(row, chunk), valid ? x + row * cin + k : x, valid ? 16 : 0);
  }
  unsigned char* const b = slot + Tr::kABytes;
#pragma unroll
  for (int i = threadIdx.x; i < kBChunks; i += Tr::kThreads) {
    constexpr int kPerRow = Tr::TN / 8;
    const int k = i / kPerRow, col = i % kPerRow * 8, atom = col / 64, chunk = col % 64 / 8;
    const bool valid = k0 + k < cin && co0 + col < cout;
    cp_async16(b + atom * Tr::kAtomBytes + swizzle128(k, chunk), valid ? w + (k0 + k) * cout + co0 + col : w,
               valid ? 16 : 0);
  }
}

// Block (pixel tile blockIdx.x, channel tile blockIdx.y).
template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, 1)
    pointwise_wgmma_kernel(const PointwiseShape s, const PointwisePointers p, const int activation, const Run run) {
  using T = typename Tr::T;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* const bias_s = reinterpret_cast<T*>(smem_raw);
  // The ring on a 1024-byte boundary of the shared window (the swizzle period).
  const uint32_t ring_raw = shared_address(smem_raw + Tr::kBiasBytes);
  unsigned char* const ring = smem_raw + Tr::kBiasBytes + (1024 - ring_raw % 1024) % 1024;
  const int64_t m0 = int64_t(blockIdx.x) * Tr::kTileM;
  const int rows = s.m - m0 < Tr::kTileM ? int(s.m - m0) : Tr::kTileM;
  const int cin = int(s.cin), cout = int(s.cout), co0 = int(blockIdx.y) * Tr::TN;
  const T* const x = static_cast<const T*>(p.x) + m0 * cin;  // 64-bit tile base; in-tile offsets are 32-bit
  const T* const w = static_cast<const T*>(p.kernel);
  const T* const bias = static_cast<const T*>(p.bias);
  for (int c = threadIdx.x; c < Tr::TN; c += Tr::kThreads)
    bias_s[c] = co0 + c < cout ? bias[co0 + c] : Elem<T>::from_float(0.f);

  auto issue = [&](int step) {  // one commit group per call, empty past the last step
    if (step < run.steps)
      stage_step<Tr>(ring + step % Tr::kStages * Tr::kStageBytes, x, w, rows, cin, cout, co0, step);
    cp_async_commit();
  };
#pragma unroll
  for (int i = 0; i < Tr::kAhead; ++i) issue(i);

  const int warpgroup = threadIdx.x / 128;
  float acc[Tr::TN / 2];
#pragma unroll
  for (int i = 0; i < Tr::TN / 2; ++i) acc[i] = 0.f;
  wgmma_fence_operands(acc);
  for (int step = 0; step < run.steps; ++step) {
    cp_async_wait<Tr::kAhead - 1>();  // this step's copies (this thread's) landed
    fence_proxy_async_shared();       // ... and are visible to the tensor cores
    // After this barrier every warpgroup has seen step - 2's wgmmas complete
    // (the wait below), so the slot the next copy overwrites is free.
    __syncthreads();
    issue(step + Tr::kAhead);
    const uint32_t slot = shared_address(ring + step % Tr::kStages * Tr::kStageBytes);
    const uint32_t a = slot + warpgroup * 64 * 128, b = slot + Tr::kABytes;
    wgmma_fence();
#pragma unroll
    for (int k = 0; k < Tr::kK / 16; ++k)
      Wgmma<T, Tr::TN>::run(acc, wgmma_descriptor(a + k * 32, 16, 1024),
                            wgmma_descriptor(b + k * 16 * 128, Tr::kAtomBytes, 1024), 1);
    wgmma_commit();
    wgmma_wait<1>();
    wgmma_fence_operands(acc);
  }
  wgmma_wait<0>();
  wgmma_fence_operands(acc);
  cp_async_wait<0>();
  __syncthreads();  // every warpgroup is done with the ring: it becomes the epilogue's scratch

  // Accumulators -> fp32 scratch rows (lane l of warp w of the warpgroup
  // holds rows 16 w + l / 4 (+ 8), columns 8 j + 2 (l % 4) (+ 1)), then
  // bias, activation and 16-byte stores of 8 consecutive channels per thread
  // (the fused kernel's store_outputs). H100: a version storing 4-byte pairs
  // straight from the registers (with a run-time ring depth) ran the 960 ->
  // 320 layer at N = 64 1.3x slower.
  float* const scratch = reinterpret_cast<float*>(ring);
  const int warp = threadIdx.x % 128 / 32, lane = threadIdx.x % 32;
  const int r0 = warpgroup * 64 + warp * 16 + lane / 4, c0 = 2 * (lane % 4);
#pragma unroll
  for (int j = 0; j < Tr::TN / 8; ++j) {
    *reinterpret_cast<float2*>(scratch + r0 * Tr::kScratchLd + 8 * j + c0) = make_float2(acc[4 * j], acc[4 * j + 1]);
    *reinterpret_cast<float2*>(scratch + (r0 + 8) * Tr::kScratchLd + 8 * j + c0) =
        make_float2(acc[4 * j + 2], acc[4 * j + 3]);
  }
  __syncthreads();
  T* const y = static_cast<T*>(p.y) + m0 * cout;
  with_activation(activation, [&](auto kind) {
    constexpr int kGroups = Tr::TN / 8;  // 8-channel groups per row
    for (int i = threadIdx.x; i < Tr::kTileM * kGroups; i += Tr::kThreads) {
      const int row = i / kGroups, col = i % kGroups * 8;
      if (row >= rows || co0 + col >= cout) continue;
      const float4* src = reinterpret_cast<const float4*>(scratch + row * Tr::kScratchLd + col);
      const float4 lo = src[0], hi = src[1];
      const float v[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
      dw_pw_detail::store_outputs<kind.value>(y + row * cout + co0 + col, bias_s + col, v, co0 + col, cout, true);
    }
  });
}

}  // namespace pointwise_wgmma_detail

// Whether the wgmma kernel can run this call: 16-bit type, Cin and Cout
// multiples of 8, x / w / bias 16-byte aligned (checked by the launcher too).
inline bool pointwise_wgmma_shape_ok(const PointwiseShape& s) { return s.cin % 8 == 0 && s.cout % 8 == 0; }

template <typename T, int Warpgroups, int TN>
cudaError_t launch_pointwise_wgmma(const PointwiseShape& s, const PointwisePointers& p, int activation,
                                   cudaStream_t stream) {
  using Tr = pointwise_wgmma_detail::Traits<T, Warpgroups, TN>;
  constexpr auto kernel = pointwise_wgmma_detail::pointwise_wgmma_kernel<Tr>;
  if (s.m == 0) return cudaSuccess;
  if (!pointwise_wgmma_shape_ok(s) || !dw_pw_detail::aligned16(p.x) || !dw_pw_detail::aligned16(p.kernel) ||
      !dw_pw_detail::aligned16(p.y))
    return cudaErrorInvalidValue;
  const int64_t m_tiles = (s.m + Tr::kTileM - 1) / Tr::kTileM, co_tiles = (s.cout + TN - 1) / TN;
  if (m_tiles > INT_MAX || co_tiles > 65535) return cudaErrorInvalidConfiguration;
  pointwise_wgmma_detail::Run run{};
  run.steps = int((s.cin + Tr::kK - 1) / Tr::kK);
  if (cudaError_t err = allow_dynamic_smem<kernel>(Tr::kSmemBytes); err != cudaSuccess) return err;
  kernel<<<dim3(unsigned(m_tiles), unsigned(co_tiles)), Tr::kThreads, Tr::kSmemBytes, stream>>>(s, p, activation,
                                                                                               run);
  return cudaGetLastError();
}

}  // namespace jax_fcm

#define FCM_INSTANTIATE_POINTWISE_WGMMA_ONE(T, WG, TN)                                                      \
  template cudaError_t jax_fcm::launch_pointwise_wgmma<T, WG, TN>(                                         \
      const jax_fcm::PointwiseShape&, const jax_fcm::PointwisePointers&, int, cudaStream_t);
#define FCM_INSTANTIATE_POINTWISE_WGMMA(T)        \
  FCM_INSTANTIATE_POINTWISE_WGMMA_ONE(T, 1, 64)   \
  FCM_INSTANTIATE_POINTWISE_WGMMA_ONE(T, 1, 128)  \
  FCM_INSTANTIATE_POINTWISE_WGMMA_ONE(T, 2, 64)   \
  FCM_INSTANTIATE_POINTWISE_WGMMA_ONE(T, 2, 128)
