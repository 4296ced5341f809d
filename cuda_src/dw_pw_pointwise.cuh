// Pointwise stage of the fused kernel: the [pixels x KC] x [KC x TN] tile
// GEMM accumulated in fp32 registers (WMMA tensor cores for bf16/fp16 and
// TF32, FFMA for full fp32), and the epilogue's bias + activation + stores.
#pragma once

#include <mma.h>

#include <cstdint>

#include "activations.h"
#include "element.cuh"

namespace jax_fcm {
namespace dw_pw_detail {

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

// Epilogue layout: in each 16x16 accumulator block, lane owns 8 consecutive
// columns (half 0 or 1) of one row. Rows are lane % 16 so that a quarter-warp
// reading the scratch row by row (16-byte loads) hits 8 different rows,
// kScratchLd = 20 floats apart: distinct banks.
__device__ __forceinline__ int epilogue_row(int lane) { return lane % 16; }
__device__ __forceinline__ int epilogue_col(int lane) { return lane / 16 * 8; }

// Pointwise accumulators of one warp: a 16 x kWarpN slab of the block tile.
// Tensor-core version keeps WMMA fragments; the full-fp32 version keeps, per
// 16x16 block, the 8 values that lane owns in the epilogue layout
// (epilogue_row, epilogue_col).
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
    // 16-byte aligned: rows of kScratchLd = 20 floats, halves of 8 floats.
    const float4* src =
        reinterpret_cast<const float4*>(scratch + epilogue_row(lane) * Tr::kScratchLd + epilogue_col(lane));
    const float4 lo = src[0], hi = src[1];
    out[0] = lo.x, out[1] = lo.y, out[2] = lo.z, out[3] = lo.w;
    out[4] = hi.x, out[5] = hi.y, out[6] = hi.z, out[7] = hi.w;
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
    const float* a_row = a_s + (wm * 16 + epilogue_row(lane)) * Tr::kLdA;
    const float* b_col = b_s + wn * Tr::kWarpN + epilogue_col(lane);
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

// Bias (8 values staged in shared memory) + activation + store of 8
// consecutive output channels of one pixel.
template <int Act, typename T>
__device__ __forceinline__ void store_outputs(T* __restrict__ dst, const T* bias_s, const float (&v)[8], int64_t co,
                                              int64_t cout, bool vec) {
  float bias[8];
  Elem<T>::load4(bias_s, *reinterpret_cast<float(*)[4]>(bias));
  Elem<T>::load4(bias_s + 4, *reinterpret_cast<float(*)[4]>(bias + 4));
  float out[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) out[e] = apply_activation(v[e] + bias[e], Act);
  if (vec) {  // co is a multiple of 8 and the row is 16-byte aligned
    Elem<T>::store8(dst, out);
  } else {
#pragma unroll
    for (int e = 0; e < 8; ++e)
      if (co + e < cout) dst[e] = Elem<T>::from_float(out[e]);
  }
}

}  // namespace dw_pw_detail
}  // namespace jax_fcm
