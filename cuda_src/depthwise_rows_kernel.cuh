// Standalone depthwise convolution for 7x7 kernels at stride 1 (ConvNeXt's
// layers), on large batches. The general kernel (depthwise_kernel.cuh) ran
// them at 5-6x the HBM floor on the H100, bound by instructions rather than
// bytes: with 2-4 output pixels per thread every staged input and tap was
// loaded and unpacked from 16-bit for only a few multiply-adds (~115
// instructions per output element for 49 FMAs).
//
// Here a thread owns 4 channels x 7 neighbouring output pixels of one row, so
// each input pixel it loads feeds up to 7 taps' FMAs; the taps and bias are
// staged once per chunk as fp32, so they cost no unpacking; results go from
// registers straight to global memory. A warp owns one output row of a tile
// and a block seven rows: tiles of 7 x 28 pixels with 32-channel chunks or
// 7 x 14 with 64, whichever pads the layer less (the 224x224 networks' 56,
// 28 and 14 are multiples of 7). Blocks are persistent, two per SM (registers
// allow no more), and stage the next tile while computing this one.
//
// H100, N = 64 (docs/benchmarks.md): bf16 ConvNeXt 56x56x96 127 -> 87 us,
// 28x28x192 68 -> 55 us; float32 150 -> 110, 99 -> 66, 53 -> 40 us. Where it
// lost, the general kernel stays: 7-wide images (a 7 x 7 tile has a 3.4x input
// halo), 5x5 kernels (EfficientNet: equal or 10 % slower), stride 2 (nvcc
// spills), and grids of fewer than two tiles per resident block (ConvNeXt at
// N <= 8: one or two tiles per block cannot hide their own copies).
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "activations.h"
#include "async_copy.cuh"
#include "depthwise_params.h"
#include "dw_pw_depthwise.cuh"
#include "dw_pw_stage.cuh"
#include "dw_pw_traits.cuh"
#include "dw_pw_launch.h"
#include "dynamic_smem.cuh"
#include "element.cuh"

namespace jax_fcm {
namespace depthwise_rows_detail {

template <typename T_, int K_, int S_, int KC_>
struct RowsTraits {
  using T = T_;
  static constexpr int K = K_, S = S_, KC = KC_;
  static constexpr int kRun = 7;                   // output pixels of one row per thread
  static constexpr int kGroups = KC / 4;           // lanes along the channels (4 each)
  static constexpr int kSegs = 32 / kGroups;       // lanes along the row
  static constexpr int TH = 7, TW = kRun * kSegs;  // one warp per output row of the tile
  static constexpr int kThreads = 32 * TH;
  static constexpr int kInH = (TH - 1) * S + K, kInW = (TW - 1) * S + K;
  static constexpr int kVec = 16 / int(sizeof(T));
  // 16-bit, 32 channels: a half-warp's 8-byte loads cover two pixels a run
  // apart; the pad puts them in opposite halves of the banks (as in the
  // fused kernel's staging). Wider chunks fill a half-warp with one pixel.
  static constexpr int kInPix =
      KC + (sizeof(T) == 2 && KC == 32 ? dw_pw_detail::input_pad_elements(kRun, S) : 0);
  static constexpr int kInBytes = kInH * kInW * kInPix * int(sizeof(T));
  static constexpr int kTapsBytes = (K * K + 1) * KC * 4;  // fp32 taps, then the bias as one more row

  static_assert(32 % kGroups == 0, "a warp spans whole channel chunks");
  static_assert(TW == depthwise_rows_tile_w(KC), "the tile width the host rules (depthwise_params.h) assume");
  static_assert((kInPix * int(sizeof(T))) % 16 == 0, "staged pixels take whole 16-byte copies");
};

// The chunk's taps [K*K][KC] and bias (row K*K) as fp32; zeros past C.
template <class Tr>
__device__ __forceinline__ void stage_taps_fp32(float* taps_s, const typename Tr::T* __restrict__ dw,
                                                const typename Tr::T* __restrict__ bias, int channels, int c0) {
  using T = typename Tr::T;
  for (int i = int(threadIdx.x); i < (Tr::K * Tr::K + 1) * Tr::KC; i += Tr::kThreads) {
    const int tap = i / Tr::KC, c = c0 + i % Tr::KC;
    float v = 0.f;
    if (c < channels) v = Elem<T>::to_float(tap < Tr::K * Tr::K ? dw[tap * channels + c] : bias[c]);
    taps_s[i] = v;
  }
}

// One work unit: a 7 x TW pixel tile of one image, one channel chunk. Units
// are numbered chunk-major, so a block walking every gridDim.x-th unit keeps
// its chunk (and staged taps) for long stretches.
struct Unit {
  int c0, n, oy0, ox0;
};

template <class Tr>
__device__ __forceinline__ Unit unit_at(int u, int tiles_w, int tiles, int images) {
  const int per_chunk = tiles * images, rest = u % per_chunk, tile = rest % tiles;
  return Unit{u / per_chunk * Tr::KC, rest / tiles, tile / tiles_w * Tr::TH, tile % tiles_w * Tr::TW};
}

template <class Tr>
__device__ __forceinline__ void stage_input(typename Tr::T* in_s, const void* x, const dw_pw_detail::StageDims& d,
                                            const DwPwShape& s, const Unit& at, bool vec_x) {
  dw_pw_detail::InputCopies<Tr> input;
  input.locate(static_cast<const typename Tr::T*>(x), d, at.n, at.oy0 * Tr::S - int(s.pad_top),
               at.ox0 * Tr::S - int(s.pad_left));
  input.stage(in_s, d, at.c0, vec_x);
}

// This thread's 4 channels x 7 pixels of the unit from its staged input:
// fp32 multiply-adds, bias, activation, one rounding, stored to y.
template <class Tr>
__device__ __forceinline__ void convolve_run(const typename Tr::T* in_s, const float* taps_s, const DwPwShape& s,
                                             const dw_pw_detail::StageDims& d, const Unit& at, void* y_ptr,
                                             int activation, bool vec_y) {
  using T = typename Tr::T;
  constexpr int K = Tr::K, S = Tr::S, R = Tr::kRun;
  const int lane = int(threadIdx.x) % 32, row = int(threadIdx.x) / 32;
  const int g = lane % Tr::kGroups, seg = lane / Tr::kGroups;
  const int c = at.c0 + 4 * g, oy = at.oy0 + row, ox = at.ox0 + seg * R;
  if (c >= d.c || oy >= s.ho) return;
  float acc[R][4] = {};
  // One tap row at a time: unrolled over ky, nvcc hoists every row's tap and
  // input loads and wants 150-250 registers (spilling under any cap that
  // lets two blocks share an SM).
#pragma unroll 1
  for (int ky = 0; ky < K; ++ky) {
    float taps[K][4];
#pragma unroll
    for (int kx = 0; kx < K; ++kx) Elem<float>::load4(taps_s + (ky * K + kx) * Tr::KC + 4 * g, taps[kx]);
    const T* in_row = in_s + ((row * S + ky) * Tr::kInW + seg * R * S) * Tr::kInPix + 4 * g;
    dw_pw_detail::accumulate_tap_row<T, K, S, R, Tr::kInPix>(in_row, taps, acc);
  }
  float bias[4];
  Elem<float>::load4(taps_s + K * K * Tr::KC + 4 * g, bias);
  T* const y = static_cast<T*>(y_ptr) + int64_t(at.n) * s.ho * s.wo * s.c + (oy * int(s.wo) + ox) * d.c + c;
  with_activation(activation, [&](auto kind) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (ox + r >= s.wo) break;
      float out[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) out[e] = apply_activation(acc[r][e] + bias[e], kind.value);
      T* const dst = y + r * d.c;
      if (vec_y) {
        Elem<T>::store4_global(dst, out);
      } else {
        for (int e = 0; e < 4 && c + e < d.c; ++e) dst[e] = Elem<T>::from_float(out[e]);
      }
    }
  });
}

// Persistent blocks: block b takes units b, b + gridDim.x, ... With two
// input stages the next unit's copies are in flight while this one computes
// (the block's own overlap: only two 224-thread blocks fit an SM's registers).
template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, 2)
    depthwise_rows_kernel(const DwPwShape s, const DepthwisePointers p, const int activation, const int units,
                          const int stages, const bool vec_x, const bool vec_y) {
  using T = typename Tr::T;
  extern __shared__ __align__(16) unsigned char smem[];
  T* const in_s = reinterpret_cast<T*>(smem);
  float* const taps_s = reinterpret_cast<float*>(smem + stages * Tr::kInBytes);
  constexpr int kInElems = Tr::kInBytes / int(sizeof(T));
  const dw_pw_detail::StageDims d(s);
  const int tiles_w = int((s.wo + Tr::TW - 1) / Tr::TW);
  const int tiles = int((s.ho + Tr::TH - 1) / Tr::TH) * tiles_w, images = int(s.n);
  int u = int(blockIdx.x), buf = 0, taps_c0 = -1;
  if (stages == 2 && u < units) stage_input<Tr>(in_s, p.x, d, s, unit_at<Tr>(u, tiles_w, tiles, images), vec_x);
  cp_async_commit();  // its own group: the loop's wait<1> lets only the next unit's copies stay in flight
  for (; u < units; u += int(gridDim.x)) {
    const Unit at = unit_at<Tr>(u, tiles_w, tiles, images);
    if (stages == 1) {
      stage_input<Tr>(in_s, p.x, d, s, at, vec_x);
    } else if (u + int(gridDim.x) < units) {
      stage_input<Tr>(in_s + (buf ^ 1) * kInElems, p.x, d, s, unit_at<Tr>(u + int(gridDim.x), tiles_w, tiles, images),
                      vec_x);
    }
    cp_async_commit();  // every iteration, even empty: wait<1> counts groups
    if (at.c0 != taps_c0) {  // block-uniform; the last iteration's readers are past its closing barrier
      stage_taps_fp32<Tr>(taps_s, static_cast<const T*>(p.kernel), static_cast<const T*>(p.bias), d.c, at.c0);
      taps_c0 = at.c0;
    }
    if (stages == 2) cp_async_wait<1>(); else cp_async_wait<0>();  // this unit's group has landed
    __syncthreads();
    convolve_run<Tr>(in_s + buf * kInElems, taps_s, s, d, at, p.y, activation, vec_y);
    __syncthreads();  // before the next iteration's copies reuse a stage (and taps)
    buf ^= stages - 1;
  }
}

}  // namespace depthwise_rows_detail

// The tile and chunk choice and when this kernel runs: depthwise_params.h
// (depthwise_rows_chunk, use_depthwise_rows), shared with the CPU build.

template <typename T, int K, int S>
cudaError_t launch_depthwise_rows(const DwPwShape& s, const DepthwisePointers& p, int activation,
                                  const DeviceLimits& limits, cudaStream_t stream) {
  const auto run = [&](auto traits) -> cudaError_t {
    using Tr = decltype(traits);
    constexpr auto kernel = depthwise_rows_detail::depthwise_rows_kernel<Tr>;
    const int64_t tiles = (s.ho + Tr::TH - 1) / Tr::TH * ((s.wo + Tr::TW - 1) / Tr::TW);
    const int64_t units = tiles * s.n * ((s.c + Tr::KC - 1) / Tr::KC);
    if (units > INT_MAX) return cudaErrorInvalidConfiguration;
    // Two stages where two such blocks still share an SM (16-bit types);
    // else one (float32), and the other block's work overlaps the copies.
    const int two_stage_bytes = 2 * Tr::kInBytes + Tr::kTapsBytes;
    const int stages = 2 * (two_stage_bytes + 1024) <= limits.max_dynamic_smem + 1024 ? 2 : 1;
    const int smem = stages * Tr::kInBytes + Tr::kTapsBytes;
    const bool vec_x = s.c % Tr::kVec == 0 && aligned16(p.x);
    // 4-channel stores: whole groups, and addresses aligned to the group.
    const bool vec_y = s.c % 4 == 0 && reinterpret_cast<uintptr_t>(p.y) % (4 * sizeof(T)) == 0;
    if (cudaError_t err = allow_dynamic_smem<kernel>(smem); err != cudaSuccess) return err;
    const int64_t slots = 2 * int64_t(limits.sm_count);
    const unsigned grid = unsigned(units < slots ? units : slots);
    kernel<<<grid, Tr::kThreads, smem, stream>>>(s, p, activation, int(units), stages, vec_x, vec_y);
    return cudaGetLastError();
  };
  if (depthwise_rows_chunk(s.wo, s.c) == 64) return run(depthwise_rows_detail::RowsTraits<T, K, S, 64>{});
  return run(depthwise_rows_detail::RowsTraits<T, K, S, 32>{});
}

}  // namespace jax_fcm
