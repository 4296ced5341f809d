// Standalone depthwise k x k convolution, NHWC, + bias + activation: for the
// layers the planner does not fuse (a depthwise conv followed by a norm or a
// squeeze-excite, or whose pointwise partner runs better on its own).
//
// Memory-bound, so the kernel is built around the loads. A block owns an
// 8 x 8 tile of output pixels and KC channels (32, or 64 for 16-bit types
// with C >= 128: 128-byte pixel rows); it copies the tile's input window and
// taps into shared memory with cp.async (every copy of the block in flight at
// once, zero-filled outside the image: no padding pass), runs the fused
// kernel's depthwise stage (fp32 arithmetic, bias, activation, one rounding)
// into an [pixels][KC] tile, and writes that out with 16-byte stores. Many
// small blocks per SM overlap one block's copies with another's arithmetic.
// A first version without shared memory (each thread loading its own window
// straight from global memory, 4 channels x 8 output columns) measured
// 1.1-3x slower on the H100 at N = 64 and up to 5x at N = 1: every input row
// cost a full memory latency, one row after the other.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "activations.h"
#include "async_copy.cuh"
#include "depthwise_params.h"
#include "depthwise_rows_kernel.cuh"
#include "dw_pw_depthwise.cuh"
#include "dw_pw_stage.cuh"
#include "dw_pw_traits.cuh"
#include "dynamic_smem.cuh"
#include "element.cuh"

namespace jax_fcm {
namespace depthwise_detail {

// The fused kernel's geometry with an 8 x 8 tile and KC-channel chunks; the
// pointwise parts (TN, Math) are unused: kPwMathFp32 keeps float32 results
// out of TF32 rounding.
template <typename T, int K, int S, int KC>
using Traits = dw_pw_detail::Traits<T, kPwMathFp32, K, S, 32, 8, KC>;

template <class Tr>
constexpr int smem_bytes() {
  return Tr::kInStageBytes + Tr::kTapsStageBytes + Tr::kASlotBytes;
}

// Block (tile, chunk) of image blockIdx.y (and every gridDim.y-th after it).
template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads) depthwise_kernel(const DwPwShape s, const DepthwisePointers p,
                                                                 const int activation, const bool vec_x,
                                                                 const bool vec_y) {
  using T = typename Tr::T;
  extern __shared__ __align__(16) unsigned char smem[];
  T* const in_s = reinterpret_cast<T*>(smem);
  T* const taps_s = reinterpret_cast<T*>(smem + Tr::kInStageBytes);
  T* const a_s = reinterpret_cast<T*>(smem + Tr::kInStageBytes + Tr::kTapsStageBytes);
  const dw_pw_detail::StageDims dims(s);
  const int tiles_w = int((s.wo + Tr::TW - 1) / Tr::TW);
  const int tiles = int((s.ho + Tr::TH - 1) / Tr::TH) * tiles_w;
  const int tile = int(blockIdx.x) % tiles, chunk = int(blockIdx.x) / tiles;
  const int oy0 = tile / tiles_w * Tr::TH, ox0 = tile % tiles_w * Tr::TW, c0 = chunk * Tr::KC;
  const T* const x = static_cast<const T*>(p.x);
  for (int64_t n = blockIdx.y; n < s.n; n += gridDim.y) {
    dw_pw_detail::InputCopies<Tr> input;
    input.locate(x, dims, int(n), oy0 * Tr::S - int(s.pad_top), ox0 * Tr::S - int(s.pad_left));
    input.stage(in_s, dims, c0, vec_x);
    dw_pw_detail::stage_taps<Tr>(taps_s, static_cast<const T*>(p.kernel), static_cast<const T*>(p.bias), dims, c0,
                                 vec_x);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    dw_pw_detail::depthwise_chunk<Tr>(in_s, taps_s, a_s, s, c0, activation);
    __syncthreads();
    dw_pw_detail::store_a_tile<Tr>(a_s, static_cast<T*>(p.y) + n * s.ho * s.wo * s.c, int(s.ho), int(s.wo), dims.c,
                                   oy0, ox0, c0, vec_y);
    __syncthreads();  // before the next image's copies overwrite the stages
  }
}

}  // namespace depthwise_detail

template <typename T, int K, int S>
cudaError_t launch_depthwise(const DepthwiseShape& d, const DepthwisePointers& p, int activation,
                             cudaStream_t stream) {
  if (d.n == 0 || d.c == 0) return cudaSuccess;
  DwPwShape s;  // the shape the shared staging and depthwise code index with
  s.n = d.n, s.h = d.h, s.w = d.w, s.c = d.c, s.ho = d.ho, s.wo = d.wo, s.cout = d.c;
  s.kernel = d.kernel, s.stride = d.stride, s.pad_top = d.pad_top, s.pad_left = d.pad_left;
  // 7x7 at stride 1 on large batches: the kernel built for its arithmetic (depthwise_rows_kernel.cuh).
  if constexpr (K == 7 && S == 1) {
    DeviceLimits limits;
    if (cudaError_t err = device_limits(&limits); err != cudaSuccess) return err;
    if (use_depthwise_rows(d, limits.sm_count)) return launch_depthwise_rows<T, K, S>(s, p, activation, limits, stream);
  }
  const auto run = [&](auto traits) -> cudaError_t {
    using Tr = decltype(traits);
    constexpr auto kernel = depthwise_detail::depthwise_kernel<Tr>;
    constexpr int kSmem = depthwise_detail::smem_bytes<Tr>();
    const int64_t tiles = (d.ho + Tr::TH - 1) / Tr::TH * ((d.wo + Tr::TW - 1) / Tr::TW);
    const int64_t blocks = tiles * ((d.c + Tr::KC - 1) / Tr::KC);
    if (blocks > INT_MAX) return cudaErrorInvalidConfiguration;
    // 16-byte copies need whole vectors per channel row and aligned bases.
    const bool rows = d.c % Tr::kVec == 0;
    const bool vec_x = rows && dw_pw_detail::aligned16(p.x) && dw_pw_detail::aligned16(p.kernel) &&
                       dw_pw_detail::aligned16(p.bias);
    const bool vec_y = rows && dw_pw_detail::aligned16(p.y);
    if (cudaError_t err = allow_dynamic_smem<kernel>(kSmem); err != cudaSuccess) return err;
    const dim3 grid(unsigned(blocks), unsigned(d.n < 65535 ? d.n : 65535));
    kernel<<<grid, Tr::kThreads, kSmem, stream>>>(s, p, activation, vec_x, vec_y);
    return cudaGetLastError();
  };
  // 64-channel chunks for 16-bit types once C fills them (H100: 5-25 % faster
  // from 144 channels up; slower at 32 and 96, where half a chunk is padding).
  if constexpr (sizeof(T) == 2) {
    if (d.c >= 128) return run(depthwise_detail::Traits<T, K, S, 64>{});
  }
  return run(depthwise_detail::Traits<T, K, S, 32>{});
}

}  // namespace jax_fcm

#define FCM_INSTANTIATE_DEPTHWISE_ONE(T, K, S)                                                         \
  template cudaError_t jax_fcm::launch_depthwise<T, K, S>(const jax_fcm::DepthwiseShape&,             \
                                                          const jax_fcm::DepthwisePointers&, int, cudaStream_t);
#define FCM_INSTANTIATE_DEPTHWISE(T)      \
  FCM_INSTANTIATE_DEPTHWISE_ONE(T, 3, 1) \
  FCM_INSTANTIATE_DEPTHWISE_ONE(T, 3, 2) \
  FCM_INSTANTIATE_DEPTHWISE_ONE(T, 5, 1) \
  FCM_INSTANTIATE_DEPTHWISE_ONE(T, 5, 2) \
  FCM_INSTANTIATE_DEPTHWISE_ONE(T, 7, 1) \
  FCM_INSTANTIATE_DEPTHWISE_ONE(T, 7, 2)
