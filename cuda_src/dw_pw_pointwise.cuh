// Pointwise stage of the fused kernel: the [pixels x KC] x [KC x TN] tile
// GEMM accumulated in fp32 registers (mma.sync tensor cores for bf16/fp16
// and, as TF32, for float32 at default precision; FFMA for full fp32), and the
// epilogue's bias + activation + stores.
#pragma once

#include <cstdint>
#include <type_traits>

#include "activations.h"
#include "element.cuh"
#include "dw_pw_depthwise.cuh"  // Requant
#include "mma_sync.cuh"
#include "requantize.h"

namespace jax_fcm {
namespace dw_pw_detail {

// How a kernel instantiation computes the pointwise GEMM: mma.sync on tensor
// cores (bf16/fp16, and TF32 for float32 at default precision), or FFMA
// (float32 at lax.Precision.HIGHEST).
enum class PwPath { kMma, kFfma };
template <class Tr>
constexpr PwPath pw_path() {
  return Tr::kTensorCores ? PwPath::kMma : PwPath::kFfma;
}

// Epilogue layout: in each 16x16 accumulator block, lane owns 8 consecutive
// columns (half 0 or 1) of one row. Rows are lane % 16 so that a quarter-warp
// reading the scratch row by row (16-byte loads) hits 8 different rows,
// kScratchLd = 20 floats apart: distinct banks.
__device__ __forceinline__ int epilogue_row(int lane) { return lane % 16; }
__device__ __forceinline__ int epilogue_col(int lane) { return lane / 16 * 8; }

// 8 consecutive 4-byte values (float, or the int8 kernels' int32 sums) from
// a 16-byte aligned address: two 16-byte loads.
template <typename V>
__device__ __forceinline__ void load8_words(const V* src, V (&out)[8]) {
  static_assert(sizeof(V) == 4, "4-byte values");
  const uint4 lo = reinterpret_cast<const uint4*>(src)[0], hi = reinterpret_cast<const uint4*>(src)[1];
  const uint32_t words[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
  for (int e = 0; e < 8; ++e) out[e] = *reinterpret_cast<const V*>(&words[e]);
}

// ... and to a 16-byte aligned (shared-memory) address: two 16-byte stores.
template <typename V>
__device__ __forceinline__ void store8_words(V* dst, const V (&v)[8]) {
  static_assert(sizeof(V) == 4, "4-byte values");
  uint32_t words[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) words[e] = *reinterpret_cast<const uint32_t*>(&v[e]);
  reinterpret_cast<uint4*>(dst)[0] = make_uint4(words[0], words[1], words[2], words[3]);
  reinterpret_cast<uint4*>(dst)[1] = make_uint4(words[4], words[5], words[6], words[7]);
}

// A warp's 16 x 16 accumulator block, parked in its scratch ([16][kScratchLd]
// 4-byte words), read back in the epilogue layout with two 16-byte loads.
template <class Tr, typename V>
__device__ __forceinline__ void read_scratch(const V* scratch, V (&out)[8]) {
  __syncwarp();
  const int lane = threadIdx.x % 32;
  // 16-byte aligned: rows of kScratchLd = 20 words, halves of 8 words.
  load8_words(scratch + epilogue_row(lane) * Tr::kScratchLd + epilogue_col(lane), out);
  __syncwarp();
}

// 16-row groups per warp: Tr::kFragsM where the traits define it (the
// standalone pointwise kernel's 32- and 64-row warp tiles), else 1.
template <class Tr, class = void>
struct FragsM {
  static constexpr int value = 1;
};
template <class Tr>
struct FragsM<Tr, std::void_t<decltype(Tr::kFragsM)>> {
  static constexpr int value = Tr::kFragsM;
};

// Pointwise accumulators of one warp: a (16 kM) x kWarpN slab of the block
// tile, kM x kFragsN blocks of 16 x 16; warp wm's slab starts at row
// 16 kM wm. read(j, ..., i) gives block (i, j)'s values in the epilogue
// layout (epilogue_row, epilogue_col).
template <class Tr, PwPath Path = pw_path<Tr>()>
struct PwAccumulator;

// Tensor cores: mma.sync 16 x 8 x kK steps. Per 16 x 16 block, two 16 x 8
// halves; lane (g, t) holds rows g, g + 8 x columns 2t, 2t + 1 of each.
// A comes through ldmatrix (lane l addresses row l % 16 and the second 16
// bytes of the row for l >= 16: the four 8 x 8 b16 matrices in the order the
// MMA takes them, for 16-bit elements and, as pairs, for TF32). 16-bit B
// comes the same way, transposed; TF32 B (ldmatrix cannot transpose 32-bit
// elements) through scalar loads (b0 = B[t][g], b1 = B[t + 4][g]), rounded.
// With kM > 1 every B fragment feeds kM MMAs (fewer shared-memory loads per
// MMA: what bounds a deep GEMM).
//
// int8 (m16n8k32, int32 accumulators): B is staged [n][k], so it comes
// through ldmatrix untransposed: matrices (columns 0-7, k 0-15), (0-7,
// 16-31), (8-15, 0-15), (8-15, 16-31) are b0, b1 of each 8-column half.
template <class Tr>
struct PwAccumulator<Tr, PwPath::kMma> {
  using T = typename Tr::T;
  using Mma = MmaSync<T>;
  using Value = typename Mma::Acc;  // float, or int for int8
  static constexpr int kK = Mma::kK, kM = FragsM<Tr>::value;
  Value acc[kM][Tr::kFragsN][2][4];
  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int i = 0; i < kM; ++i)
#pragma unroll
      for (int j = 0; j < Tr::kFragsN; ++j)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[i][j][h][e] = Value(0);
  }
  // lda: A's row stride (elements); a run-time value only where A's width is
  // (the mbconv expansion reads x rows of Cin channels). RoundA: A holds
  // float32 values not yet rounded to TF32 (the standalone pointwise kernel
  // stages x as it is), so its fragments are rounded after the load.
  template <bool RoundA = false>
  __device__ __forceinline__ void accumulate(const T* a_s, const T* b_s, int wm, int wn, int lda = Tr::kLdA) {
    const int lane = threadIdx.x % 32;
    const T* a_lane = a_s + (wm * 16 * kM + lane % 16) * lda + lane / 16 * (16 / int(sizeof(T)));
    const T* b_warp = b_s + wn * Tr::kWarpN;
#pragma unroll
    for (int kk = 0; kk < Tr::KC; kk += kK) {
      uint32_t a[kM][4];
#pragma unroll
      for (int i = 0; i < kM; ++i) {
        ldmatrix_x4(a[i], a_lane + i * 16 * lda + kk);
        if constexpr (RoundA && sizeof(T) == 4) {
#pragma unroll
          for (int r = 0; r < 4; ++r) a[i][r] = tf32_bits(__uint_as_float(a[i][r]));
        }
      }
#pragma unroll
      for (int j = 0; j < Tr::kFragsN; ++j) {
        if constexpr (sizeof(T) == 1) {
          uint32_t b[4];
          ldmatrix_x4(b, b_s + (wn * Tr::kWarpN + j * 16 + lane / 16 * 8 + lane % 8) * Tr::kLdB + kk +
                             lane / 8 % 2 * 16);
#pragma unroll
          for (int i = 0; i < kM; ++i) {
            Mma::run(acc[i][j][0], a[i], b[0], b[1]);
            Mma::run(acc[i][j][1], a[i], b[2], b[3]);
          }
        } else if constexpr (sizeof(T) == 2) {
          uint32_t b[4];  // k 0-7 / 8-15 of columns 0-7, then of columns 8-15
          ldmatrix_x4_trans(b, b_warp + (kk + lane % 16) * Tr::kLdB + j * 16 + lane / 16 * 8);
#pragma unroll
          for (int i = 0; i < kM; ++i) {
            Mma::run(acc[i][j][0], a[i], b[0], b[1]);
            Mma::run(acc[i][j][1], a[i], b[2], b[3]);
          }
        } else {
          const T* b = b_warp + (kk + lane % 4) * Tr::kLdB + j * 16 + lane / 4;
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const uint32_t b0 = tf32_bits(b[h * 8]), b1 = tf32_bits(b[4 * Tr::kLdB + h * 8]);
#pragma unroll
            for (int i = 0; i < kM; ++i) Mma::run(acc[i][j][h], a[i], b0, b1);
          }
        }
      }
    }
  }
  // scratch: the warp's [16][kScratchLd] words (declared float; int8's int32
  // sums are parked there bit for bit).
  __device__ __forceinline__ void read(int j, float* scratch, Value (&out)[8], int i = 0) {
    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    Value* words = reinterpret_cast<Value*>(scratch);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      Value* top = words + g * Tr::kScratchLd + h * 8 + 2 * t;
      Value* bottom = words + (g + 8) * Tr::kScratchLd + h * 8 + 2 * t;
      top[0] = acc[i][j][h][0], top[1] = acc[i][j][h][1];
      bottom[0] = acc[i][j][h][2], bottom[1] = acc[i][j][h][3];
    }
    read_scratch<Tr>(static_cast<const Value*>(words), out);
  }
  // f(row, col, v0, v1) for each pair of neighbouring columns this lane
  // holds, straight from the fragments (row < 16 kM of the warp tile, col <
  // kWarpN, even): lane (g, t) has rows g and g + 8, columns 2t and 2t + 1
  // of every 8-column half.
  template <class F>
  __device__ __forceinline__ void pairs(F&& f) const {
    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
    for (int i = 0; i < kM; ++i)
#pragma unroll
      for (int j = 0; j < Tr::kFragsN; ++j)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          f(i * 16 + g, j * 16 + h * 8 + 2 * t, acc[i][j][h][0], acc[i][j][h][1]);
          f(i * 16 + g + 8, j * 16 + h * 8 + 2 * t, acc[i][j][h][2], acc[i][j][h][3]);
        }
  }
};

// Full fp32 (lax.Precision.HIGHEST): FFMA, each lane directly owning its
// epilogue-layout values.
template <class Tr>
struct PwAccumulator<Tr, PwPath::kFfma> {
  using Value = float;
  static constexpr int kM = FragsM<Tr>::value;
  float acc[kM][Tr::kFragsN][8];
  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int i = 0; i < kM; ++i)
#pragma unroll
      for (int j = 0; j < Tr::kFragsN; ++j)
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[i][j][e] = 0.f;
  }
  template <bool RoundA = false>  // unused: full fp32
  __device__ __forceinline__ void accumulate(const float* a_s, const float* b_s, int wm, int wn, int lda = Tr::kLdA) {
    const int lane = threadIdx.x % 32;
    const float* a_row = a_s + (wm * 16 * kM + epilogue_row(lane)) * lda;
    const float* b_col = b_s + wn * Tr::kWarpN + epilogue_col(lane);
#pragma unroll 4
    for (int k = 0; k < Tr::KC; ++k) {
      float a[kM];
#pragma unroll
      for (int i = 0; i < kM; ++i) a[i] = a_row[i * 16 * lda + k];
#pragma unroll
      for (int j = 0; j < Tr::kFragsN; ++j) {
        const float4 b0 = *reinterpret_cast<const float4*>(b_col + k * Tr::kLdB + j * 16);
        const float4 b1 = *reinterpret_cast<const float4*>(b_col + k * Tr::kLdB + j * 16 + 4);
        const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int i = 0; i < kM; ++i)
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[i][j][e] = fmaf(a[i], bv[e], acc[i][j][e]);
      }
    }
  }
  __device__ __forceinline__ void read(int j, float*, float (&out)[8], int i = 0) {
#pragma unroll
    for (int e = 0; e < 8; ++e) out[e] = acc[i][j][e];
  }
  template <class F>
  __device__ __forceinline__ void pairs(F&& f) const {
    const int lane = threadIdx.x % 32;
#pragma unroll
    for (int i = 0; i < kM; ++i)
#pragma unroll
      for (int j = 0; j < Tr::kFragsN; ++j)
#pragma unroll
        for (int e = 0; e < 8; e += 2)
          f(i * 16 + epilogue_row(lane), j * 16 + epilogue_col(lane) + e, acc[i][j][e], acc[i][j][e + 1]);
  }
};

// 8 consecutive output channels co.. of one pixel to dst: one vector store
// with vec (co a multiple of 8, the row aligned), else those below cout.
template <typename T>
__device__ __forceinline__ void store_channels(T* __restrict__ dst, const float (&out)[8], int64_t co, int64_t cout,
                                               bool vec) {
  if (vec) {
    Elem<T>::store8(dst, out);
  } else {
#pragma unroll
    for (int e = 0; e < 8; ++e)
      if (co + e < cout) dst[e] = Elem<T>::from_float(out[e]);
  }
}

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
  store_channels(dst, out, co, cout, vec);
}

// int8: requantization (int32 bias and fp32 multiplier of each channel, read
// from global memory; the clamp range holds the activation) + store of 8
// consecutive output channels of one pixel. With vec (all 8 channels real,
// bias and multipliers 16-byte aligned: the launcher's vec_y) both are read
// as two 16-byte loads each, not 16 scalar ones per 8 outputs.
template <typename T>
__device__ __forceinline__ void store_requantized(T* __restrict__ dst, const int (&v)[8], const Requant& rq,
                                                  int64_t co, int64_t cout, bool vec) {
  int32_t bias[8];
  float multiplier[8];
  if (vec) {
    load8_words(rq.bias + co, bias);
    load8_words(rq.multiplier + co, multiplier);
  } else {
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      bias[e] = co + e < cout ? __ldg(rq.bias + co + e) : 0;
      multiplier[e] = co + e < cout ? __ldg(rq.multiplier + co + e) : 0.f;
    }
  }
  float out[8];
#pragma unroll
  for (int e = 0; e < 8; ++e)
    out[e] = co + e < cout ? requantize_unrounded(__int2float_rn(v[e] + bias[e]), multiplier[e], rq.qmin, rq.qmax)
                           : 0.f;
  store_channels(dst, out, co, cout, vec);
}

}  // namespace dw_pw_detail
}  // namespace jax_fcm
