// Fused depthwise k x k -> bias -> activation -> pointwise 1x1 -> bias ->
// activation, NHWC. One kernel template, instantiated per element type, PW
// math, kernel size, stride and output-channel tile (see FCM_INSTANTIATE_DW_PW
// and the generated instantiation files in the build tree).
//
// A block owns a TH x TW tile of output pixels and TN output channels. It walks
// the input channels in chunks of KC:
//   1. stage the input tile (+ halo) and the chunk's weights in shared memory,
//   2. compute the depthwise conv for the chunk into shared memory (the
//      intermediate never touches global memory),
//   3. multiply that [pixels x KC] tile by the [KC x TN] pointwise weights,
//      accumulating in fp32 (tensor cores, or CUDA cores for full fp32).
// The epilogue adds the pointwise bias, applies the activation and writes the
// output with 16-byte stores where the channel count allows.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <climits>
#include <cstdint>
#include <type_traits>

#include "activations.h"
#include "dw_pw_launch.h"
#include "dw_pw_params.h"

namespace jax_fcm {
namespace dw_pw_detail {

template <typename T>
struct Elem;
template <>
struct Elem<float> {
  static __device__ __forceinline__ float to_float(float v) { return v; }
  static __device__ __forceinline__ float from_float(float v) { return v; }
};
template <>
struct Elem<__nv_bfloat16> {
  static __device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }
};
template <>
struct Elem<__half> {
  static __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }
};

// WMMA fragment shapes for the pointwise GEMM, per element type.
template <typename T>
struct MmaTypes {  // bf16 / fp16: native 16-bit tensor-core inputs
  static constexpr int kStep = 16;
  using AFrag = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, T, nvcuda::wmma::row_major>;
  using BFrag = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, T, nvcuda::wmma::row_major>;
  using CFrag = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;
  template <typename F>
  static __device__ __forceinline__ void round_inputs(F&) {}
};
template <>
struct MmaTypes<float> {  // float32 at default precision: TF32 tensor cores
  static constexpr int kStep = 8;
  using AFrag = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 8, nvcuda::wmma::precision::tf32,
                                       nvcuda::wmma::row_major>;
  using BFrag = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 8, nvcuda::wmma::precision::tf32,
                                       nvcuda::wmma::row_major>;
  using CFrag = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 8, float>;
  template <typename F>
  static __device__ __forceinline__ void round_inputs(F& frag) {
#pragma unroll
    for (int i = 0; i < frag.num_elements; ++i) frag.x[i] = nvcuda::wmma::__float_to_tf32(frag.x[i]);
  }
};

// Compile-time geometry of one instantiation.
template <typename T_, int Math, int K_, int S_, int TN_, int TH_ = 8, int TW_ = 8>
struct Traits {
  using T = T_;
  static constexpr int K = K_, S = S_, TN = TN_, TH = TH_, TW = TW_;
  static constexpr bool kTensorCores = !(std::is_same<T, float>::value && Math == kPwMathFp32);
  static constexpr int kThreads = 256, kWarps = kThreads / 32;
  static constexpr int kTileP = TH * TW;                  // output pixels per block
  static constexpr int kWarpsM = kTileP / 16;             // warps along pixels
  static constexpr int kWarpsN = kWarps / kWarpsM;        // warps along channels
  static constexpr int kWarpN = TN / kWarpsN;             // channels per warp
  static constexpr int kFragsN = kWarpN / 16;             // 16x16 accumulators per warp
  static constexpr int kInH = (TH - 1) * S + K, kInW = (TW - 1) * S + K;
  static constexpr int kVec = 16 / sizeof(T);             // elements per 16-byte access
  static constexpr int kPad = 16 / sizeof(T);             // row padding of the GEMM tiles
  static constexpr int kRun = 4;                          // DW outputs per thread along w
  static constexpr int kScratchLd = 20;                   // epilogue scratch row (floats)
  // Two resident blocks per SM hide latency across the chunk loop's barriers;
  // wide channel tiles need more accumulator registers than that allows.
  static constexpr int kMinBlocks = TN >= 128 ? 1 : 2;
  static constexpr int kScratchBytes = kWarps * 16 * kScratchLd * 4;

  static constexpr int in_bytes(int kc) { return kInH * kInW * kc * 4; }
  static constexpr int region0_bytes(int kc) {
    return in_bytes(kc) > kScratchBytes ? in_bytes(kc) : kScratchBytes;
  }
  static constexpr int smem_bytes(int kc) {
    return region0_bytes(kc) + K * K * kc * 4 + kTileP * (kc + kPad) * (int)sizeof(T) +
           kc * (TN + kPad) * (int)sizeof(T);
  }
  // Largest channel chunk whose working set fits the 48 KB of static shared
  // memory (no cudaFuncSetAttribute needed, so launches stay capture-safe).
  static constexpr int KC = smem_bytes(32) <= 48 * 1024 ? 32 : 16;
  static constexpr int kLdA = KC + kPad, kLdB = TN + kPad;
  static constexpr int kOffDww = region0_bytes(KC);
  static constexpr int kOffA = kOffDww + K * K * KC * 4;
  static constexpr int kOffB = kOffA + kTileP * kLdA * (int)sizeof(T);
  static constexpr int kSmemBytes = smem_bytes(KC);

  static_assert(kTileP % 16 == 0 && kWarps % kWarpsM == 0, "pixel tile must split into 16-row warp tiles");
  static_assert(TN % (16 * kWarpsN) == 0, "channel tile must split into 16-column fragments per warp");
  static_assert(TW % kRun == 0, "tile width must be a multiple of the per-thread run");
  static_assert(KC % MmaTypes<T>::kStep == 0 && KC % kVec == 0, "chunk must match MMA and vector widths");
  static_assert(kSmemBytes <= 48 * 1024, "static shared memory budget");
};

__device__ __forceinline__ void fma4(float4& acc, const float4& a, const float4& b) {
  acc.x = fmaf(a.x, b.x, acc.x);
  acc.y = fmaf(a.y, b.y, acc.y);
  acc.z = fmaf(a.z, b.z, acc.z);
  acc.w = fmaf(a.w, b.w, acc.w);
}

// 16 bytes of T from global memory, zero-filled past `valid` elements (also
// when valid <= 0). vec_ok: the row is 16-byte aligned and has >= kVec
// elements whenever valid > 0, so one vector load serves.
template <typename T>
__device__ __forceinline__ uint4 load16(const T* __restrict__ src, int64_t valid, bool vec_ok) {
  uint4 raw = make_uint4(0, 0, 0, 0);
  if (valid <= 0) return raw;
  if (vec_ok) return __ldg(reinterpret_cast<const uint4*>(src));
  T* dst = reinterpret_cast<T*>(&raw);
#pragma unroll
  for (int e = 0; e < int(16 / sizeof(T)); ++e)
    if (e < valid) dst[e] = src[e];
  return raw;
}

template <typename T>
__device__ __forceinline__ void store16_as_float(float* dst, const uint4& raw) {
  const T* vals = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int q = 0; q < int(16 / sizeof(T)) / 4; ++q)
    reinterpret_cast<float4*>(dst)[q] = make_float4(Elem<T>::to_float(vals[4 * q]), Elem<T>::to_float(vals[4 * q + 1]),
                                                    Elem<T>::to_float(vals[4 * q + 2]), Elem<T>::to_float(vals[4 * q + 3]));
}

// Stage channel chunk c0 in shared memory: the input tile with halo and zero
// padding (as float), the depthwise taps (as float) and the pointwise rows (as
// T). Every global load of the chunk is issued before the first shared store,
// so each thread has several 16-byte requests in flight instead of paying one
// memory latency per element.
template <class Tr>
__device__ __forceinline__ void stage_chunk(float* in_s, float* dww_s, typename Tr::T* b_s,
                                            const typename Tr::T* __restrict__ x, const typename Tr::T* __restrict__ dw,
                                            const typename Tr::T* __restrict__ pw, const DwPwShape& s, int64_t iy0,
                                            int64_t ix0, int c0, int64_t co0) {
  using T = typename Tr::T;
  constexpr int V = Tr::kVec, kT = Tr::kThreads;
  constexpr int kInVecs = Tr::kInH * Tr::kInW * (Tr::KC / V), kInIters = (kInVecs + kT - 1) / kT;
  constexpr int kDwVecs = Tr::K * Tr::K * (Tr::KC / V), kDwIters = (kDwVecs + kT - 1) / kT;
  constexpr int kPwVecs = Tr::KC * (Tr::TN / V), kPwIters = (kPwVecs + kT - 1) / kT;
  const bool c_vec = s.c % V == 0, cout_vec = s.cout % V == 0;
  uint4 in_raw[kInIters], dw_raw[kDwIters], pw_raw[kPwIters];
#pragma unroll
  for (int it = 0; it < kInIters; ++it) {
    const int i = threadIdx.x + it * kT;
    const int pix = i / (Tr::KC / V), c = c0 + i % (Tr::KC / V) * V;
    const int64_t gy = iy0 + pix / Tr::kInW, gx = ix0 + pix % Tr::kInW;
    const bool inside = i < kInVecs && gy >= 0 && gy < s.h && gx >= 0 && gx < s.w;
    in_raw[it] = load16(x + (gy * s.w + gx) * s.c + c, inside ? s.c - c : 0, c_vec);
  }
#pragma unroll
  for (int it = 0; it < kDwIters; ++it) {
    const int i = threadIdx.x + it * kT;
    const int tap = i / (Tr::KC / V), c = c0 + i % (Tr::KC / V) * V;
    dw_raw[it] = load16(dw + tap * s.c + c, i < kDwVecs ? s.c - c : 0, c_vec);
  }
#pragma unroll
  for (int it = 0; it < kPwIters; ++it) {
    const int i = threadIdx.x + it * kT;
    const int k = i / (Tr::TN / V);
    const int64_t c = c0 + k, co = co0 + i % (Tr::TN / V) * V;
    pw_raw[it] = load16(pw + c * s.cout + co, (i < kPwVecs && c < s.c) ? s.cout - co : 0, cout_vec);
  }
#pragma unroll
  for (int it = 0; it < kInIters; ++it) {
    const int i = threadIdx.x + it * kT;
    if (i < kInVecs) store16_as_float<T>(in_s + i * V, in_raw[it]);
  }
#pragma unroll
  for (int it = 0; it < kDwIters; ++it) {
    const int i = threadIdx.x + it * kT;
    if (i < kDwVecs) store16_as_float<T>(dww_s + i * V, dw_raw[it]);
  }
#pragma unroll
  for (int it = 0; it < kPwIters; ++it) {
    const int i = threadIdx.x + it * kT;
    if (i < kPwVecs) *reinterpret_cast<uint4*>(b_s + (i / (Tr::TN / V)) * Tr::kLdB + i % (Tr::TN / V) * V) = pw_raw[it];
  }
}

// Depthwise conv of the staged chunk: each thread computes kRun neighbouring
// output pixels of one row for 4 channels, reusing the loaded input window.
template <class Tr>
__device__ __forceinline__ void depthwise_chunk(const float* in_s, const float* dww_s, typename Tr::T* a_s,
                                                const typename Tr::T* __restrict__ dw_bias, const DwPwShape& s,
                                                int c0, int act) {
  using T = typename Tr::T;
  constexpr int K = Tr::K, S = Tr::S, R = Tr::kRun;
  constexpr int kGroups = Tr::KC / 4, kSegs = Tr::TW / R;
  constexpr int kUnits = kGroups * Tr::TH * kSegs;
  constexpr int kWin = (R - 1) * S + K;
  for (int u = threadIdx.x; u < kUnits; u += Tr::kThreads) {
    const int g = u % kGroups, seg = (u / kGroups) % kSegs, oy = u / (kGroups * kSegs);
    float4 acc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r] = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int ky = 0; ky < K; ++ky) {
      // Stream the input row once; each loaded pixel feeds every (run, tap)
      // pair that uses it, so only the row's K taps stay in registers.
      float4 taps[K];
#pragma unroll
      for (int kx = 0; kx < K; ++kx)
        taps[kx] = *reinterpret_cast<const float4*>(dww_s + (ky * K + kx) * Tr::KC + g * 4);
      const float* row = in_s + ((oy * S + ky) * Tr::kInW + seg * R * S) * Tr::KC + g * 4;
#pragma unroll
      for (int j = 0; j < kWin; ++j) {
        const float4 v = *reinterpret_cast<const float4*>(row + j * Tr::KC);
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const int kx = j - r * S;
          if (kx >= 0 && kx < K) fma4(acc[r], v, taps[kx]);
        }
      }
    }
    const int c = c0 + g * 4;
    float bias[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) bias[e] = c + e < s.c ? Elem<T>::to_float(dw_bias[c + e]) : 0.f;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float v[4] = {acc[r].x, acc[r].y, acc[r].z, acc[r].w};
      T* dst = a_s + (oy * Tr::TW + seg * R + r) * Tr::kLdA + g * 4;
#pragma unroll
      for (int e = 0; e < 4; ++e)
        dst[e] = Elem<T>::from_float(c + e < s.c ? apply_activation(v[e] + bias[e], act) : 0.f);
    }
  }
}

// Pointwise accumulators of one warp: a 16 x kWarpN slab of the block tile.
// Tensor-core version keeps WMMA fragments; the full-fp32 version keeps, per
// 16x16 block, the 8 values that lane owns in the epilogue layout
// (row = lane / 2, columns 8 * (lane % 2) .. +8).
template <class Tr, bool TensorCores = Tr::kTensorCores>
struct PwAccumulator {
  using M = MmaTypes<typename Tr::T>;
  typename M::CFrag frag[Tr::kFragsN];
  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int j = 0; j < Tr::kFragsN; ++j) nvcuda::wmma::fill_fragment(frag[j], 0.f);
  }
  __device__ __forceinline__ void accumulate(const typename Tr::T* a_s, const typename Tr::T* b_s, int wm, int wn) {
#pragma unroll
    for (int kk = 0; kk < Tr::KC; kk += M::kStep) {
      typename M::AFrag a;
      nvcuda::wmma::load_matrix_sync(a, a_s + wm * 16 * Tr::kLdA + kk, Tr::kLdA);
      M::round_inputs(a);
#pragma unroll
      for (int j = 0; j < Tr::kFragsN; ++j) {
        typename M::BFrag b;
        nvcuda::wmma::load_matrix_sync(b, b_s + kk * Tr::kLdB + wn * Tr::kWarpN + j * 16, Tr::kLdB);
        M::round_inputs(b);
        nvcuda::wmma::mma_sync(frag[j], a, b, frag[j]);
      }
    }
  }
  // Values of block j in the epilogue layout, through the warp's scratch.
  __device__ __forceinline__ void read(int j, float* scratch, float (&out)[8]) {
    nvcuda::wmma::store_matrix_sync(scratch, frag[j], Tr::kScratchLd, nvcuda::wmma::mem_row_major);
    __syncwarp();
    const int lane = threadIdx.x % 32;
    const float* src = scratch + (lane / 2) * Tr::kScratchLd + (lane % 2) * 8;
#pragma unroll
    for (int e = 0; e < 8; ++e) out[e] = src[e];
    __syncwarp();
  }
};

template <class Tr>
struct PwAccumulator<Tr, false> {
  float acc[Tr::kFragsN][8];
  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int j = 0; j < Tr::kFragsN; ++j)
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[j][e] = 0.f;
  }
  __device__ __forceinline__ void accumulate(const float* a_s, const float* b_s, int wm, int wn) {
    const int lane = threadIdx.x % 32;
    const float* a_row = a_s + (wm * 16 + lane / 2) * Tr::kLdA;
    const float* b_col = b_s + wn * Tr::kWarpN + (lane % 2) * 8;
#pragma unroll 4
    for (int k = 0; k < Tr::KC; ++k) {
      const float a = a_row[k];
#pragma unroll
      for (int j = 0; j < Tr::kFragsN; ++j) {
        const float4 b0 = *reinterpret_cast<const float4*>(b_col + k * Tr::kLdB + j * 16);
        const float4 b1 = *reinterpret_cast<const float4*>(b_col + k * Tr::kLdB + j * 16 + 4);
        const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[j][e] = fmaf(a, bv[e], acc[j][e]);
      }
    }
  }
  __device__ __forceinline__ void read(int j, float*, float (&out)[8]) {
#pragma unroll
    for (int e = 0; e < 8; ++e) out[e] = acc[j][e];
  }
};

// Bias + activation + store of 8 consecutive output channels of one pixel.
template <typename T>
__device__ __forceinline__ void store_outputs(T* __restrict__ dst, const T* __restrict__ bias, const float (&v)[8],
                                              int64_t co, int64_t cout, int act) {
  T out[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    const float b = co + e < cout ? Elem<T>::to_float(bias[co + e]) : 0.f;
    out[e] = Elem<T>::from_float(apply_activation(v[e] + b, act));
  }
  if (cout % 8 == 0) {  // co is a multiple of 8, so the row is 16-byte aligned
    constexpr int kWords = 8 * sizeof(T) / 16;
#pragma unroll
    for (int q = 0; q < kWords; ++q)
      reinterpret_cast<uint4*>(dst)[q] = reinterpret_cast<const uint4*>(out)[q];
  } else {
#pragma unroll
    for (int e = 0; e < 8; ++e)
      if (co + e < cout) dst[e] = out[e];
  }
}

template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kMinBlocks) dw_pw_fused_kernel(DwPwShape s, DwPwEpilogue epi, DwPwPointers p) {
  using T = typename Tr::T;
  __shared__ __align__(16) unsigned char smem[Tr::kSmemBytes];
  float* in_s = reinterpret_cast<float*>(smem);
  float* dww_s = reinterpret_cast<float*>(smem + Tr::kOffDww);
  T* a_s = reinterpret_cast<T*>(smem + Tr::kOffA);
  T* b_s = reinterpret_cast<T*>(smem + Tr::kOffB);

  const int64_t tiles_w = (s.wo + Tr::TW - 1) / Tr::TW, tiles_h = (s.ho + Tr::TH - 1) / Tr::TH;
  const int64_t tile = blockIdx.x;
  const int64_t n = tile / (tiles_h * tiles_w);
  const int64_t oy0 = (tile / tiles_w) % tiles_h * Tr::TH, ox0 = tile % tiles_w * Tr::TW;
  const int64_t co0 = int64_t(blockIdx.y) * Tr::TN;
  const T* x = static_cast<const T*>(p.x) + n * s.h * s.w * s.c;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp % Tr::kWarpsM, wn = warp / Tr::kWarpsM;
  PwAccumulator<Tr> acc;
  acc.zero();

  for (int c0 = 0; c0 < s.c; c0 += Tr::KC) {
    stage_chunk<Tr>(in_s, dww_s, b_s, x, static_cast<const T*>(p.dw_kernel), static_cast<const T*>(p.pw_kernel), s,
                    oy0 * Tr::S - s.pad_top, ox0 * Tr::S - s.pad_left, c0, co0);
    __syncthreads();
    depthwise_chunk<Tr>(in_s, dww_s, a_s, static_cast<const T*>(p.dw_bias), s, c0, epi.dw_activation);
    __syncthreads();
    acc.accumulate(a_s, b_s, wm, wn);
    __syncthreads();
  }

  // Epilogue. The scratch aliases the input tile, which no warp reads any more.
  float* scratch = in_s + warp * 16 * Tr::kScratchLd;
  const int pix = wm * 16 + lane / 2;
  const int64_t oy = oy0 + pix / Tr::TW, ox = ox0 + pix % Tr::TW;
  const bool in_image = oy < s.ho && ox < s.wo;
  T* y = static_cast<T*>(p.y) + ((n * s.ho + oy) * s.wo + ox) * s.cout;
#pragma unroll
  for (int j = 0; j < Tr::kFragsN; ++j) {
    float v[8];
    acc.read(j, scratch, v);
    const int64_t co = co0 + wn * Tr::kWarpN + j * 16 + (lane % 2) * 8;
    if (in_image && co < s.cout)
      store_outputs(y + co, static_cast<const T*>(p.pw_bias), v, co, s.cout, epi.pw_activation);
  }
}

}  // namespace dw_pw_detail

template <typename T, int Math, int K, int S, int TN>
cudaError_t launch_dw_pw(const DwPwShape& s, const DwPwEpilogue& epi, const DwPwPointers& p, cudaStream_t stream) {
  using Tr = dw_pw_detail::Traits<T, Math, K, S, TN>;
  const int64_t tiles = s.n * ((s.ho + Tr::TH - 1) / Tr::TH) * ((s.wo + Tr::TW - 1) / Tr::TW);
  const int64_t co_tiles = (s.cout + TN - 1) / TN;
  if (tiles <= 0 || co_tiles <= 0) return cudaSuccess;  // empty output
  if (tiles > INT_MAX || co_tiles > 65535) return cudaErrorInvalidConfiguration;
  dw_pw_detail::dw_pw_fused_kernel<Tr>
      <<<dim3(unsigned(tiles), unsigned(co_tiles)), Tr::kThreads, 0, stream>>>(s, epi, p);
  return cudaGetLastError();
}

}  // namespace jax_fcm

// Explicit instantiations for one element type, PW math and kernel size: both
// strides and every output-channel tile in kDwPwTileN.
#define FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, TN)                                                 \
  template cudaError_t jax_fcm::launch_dw_pw<T, MATH, K, S, TN>(                                   \
      const jax_fcm::DwPwShape&, const jax_fcm::DwPwEpilogue&, const jax_fcm::DwPwPointers&, cudaStream_t);
#define FCM_INSTANTIATE_DW_PW_STRIDE(T, MATH, K, S)  \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 32)      \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 64)      \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 128)     \
  FCM_INSTANTIATE_DW_PW_ONE(T, MATH, K, S, 192)
#define FCM_INSTANTIATE_DW_PW(T, MATH, K)       \
  FCM_INSTANTIATE_DW_PW_STRIDE(T, MATH, K, 1) \
  FCM_INSTANTIATE_DW_PW_STRIDE(T, MATH, K, 2)
