// Fused PW -> PW: two pointwise (1x1) convolutions with the intermediate kept
// in registers, y = act2(act1(x . w1 + b1) . w2 + b2), NHWC, over the
// M = N*H*W pixels. (ConvNeXt's and MobileViT's MLPs: C -> 4C -> C; an
// inverted-residual block's projection followed by the next block's
// expansion.) Run as two GEMMs, the 4C-wide intermediate crosses global
// memory twice; here it never leaves the SM.
//
// A block owns 128 consecutive pixels and TN output channels; 8 warps of 16
// pixel rows each. The block's input rows stay in shared memory; it walks the
// intermediate channels in steps of kHC (64 or 128 bytes of them), double-buffering
// that step's w1 columns and w2 rows with cp.async. Per step each warp
//   1. multiplies its 16 x Cin input rows by the step's w1 columns on tensor
//      cores (16 x kHC fp32 accumulators),
//   2. adds b1, applies act1 and rounds to the input dtype: the accumulator
//      fragments of mma.sync are, pair for pair, the A fragments of the next
//      MMA (for TF32 with the step's w2 rows read in a permuted order), so
//      the intermediate goes from accumulators to operands without shared
//      memory,
//   3. multiplies that by the step's w2 rows into its 16 x TN output
//      accumulators.
// The epilogue adds b2, applies act2 and stores through shared memory as
// whole 16-byte rows. Output channel tiles (grid.y > 1 when Cout > TN) each
// recompute the intermediate.
//
// int8 (jax_fcm.pw_pw_int8): m16n8k32 with int32 accumulators, the kernels
// stored transposed (rows per output channel, what ldmatrix gives B as
// without transposing bytes), and requantization (int32 bias, fp32
// multiplier, clamp) in place of bias + activation at both stages. The
// intermediate goes from accumulators to operands in registers too: an
// accumulator tile holds 2 adjacent columns per lane where an A fragment
// wants 4 adjacent k, so the w1 rows are staged in an order that makes
// accumulator tiles 2i and 2i + 1 hold k 4t..4t+1 and 4t+2..4t+3 of one
// 16-channel half (int8_hidden_channel).
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <type_traits>

#include "activations.h"
#include "async_copy.cuh"
#include "dw_pw_stage.cuh"
#include "dynamic_smem.cuh"
#include "element.cuh"
#include "mma_sync.cuh"
#include "pw_pw_launch.h"
#include "requantize.h"

namespace jax_fcm {
namespace pw_pw_detail {

template <typename T_, int TN_>
struct Traits {
  using T = T_;
  static constexpr bool kQuantized = std::is_same_v<T, int8_t>;
  using Acc = typename MmaSync<T>::Acc;  // float, or int for int8
  static constexpr int TN = TN_;
  static constexpr int kThreads = 256, kWarps = kThreads / 32, kTileM = 16 * kWarps;
  static constexpr int kVec = 16 / int(sizeof(T));   // elements per 16-byte copy
  static constexpr int kK = MmaSync<T>::kK;          // MMA depth: 16 (16-bit), 8 (TF32), 32 (int8)
  static constexpr int kPad = kVec;                  // 16 bytes per shared row: conflict-free ldmatrix
  // 8 warps per SM leave the MMA and shared-memory latencies exposed (H100,
  // ConvNeXt's 96 -> 384 -> 96 with one block per SM: 0.46 issued warps per
  // scheduler, stalls on fixed-latency dependencies first; two blocks: 1.24x
  // faster): two resident blocks where their accumulators fit 128 registers
  // without spilling ...
  static constexpr int kMinBlocks = TN <= (sizeof(T) == 2 ? 96 : 64) ? 2 : 1;
  // ... with intermediate steps of 128 bytes of channels, or 64 bytes (16-bit
  // types, two blocks per SM: 16 fewer accumulator registers, and half the
  // w1 and w2 slices in shared memory, so two blocks fit up to Cin = 192);
  // int8 steps of 64 channels (two MMA depths; 32 accumulator registers).
  static constexpr int kHC = kQuantized ? 64 : (sizeof(T) == 2 && kMinBlocks == 2 ? 64 : 128) / int(sizeof(T));
  // Slice rows: w1 [Cin][kHC] and w2 [kHC][TN]; int8 (transposed) w1
  // [kHC][Cin] (row stride Layout::ldw1) and w2 [TN][kHC].
  static constexpr int kLdW1 = kHC + kPad, kLdW2 = (kQuantized ? kHC : TN) + kPad, kLdY = TN + kPad;
  static constexpr int kHTiles = kHC / 8, kYTiles = TN / 8;  // 8-column MMA tiles per warp
  // Bytes per channel of a bias slice: the bias, or int8's int32 bias and fp32 multiplier.
  static constexpr int kChannelBytes = kQuantized ? 8 : int(sizeof(T));
  static_assert(TN % 32 == 0 && TN <= 128, "output tile");
};

// Shared memory, in bytes from the start: [b2: TN] [b1: 2 x kHC] (int8:
// int32 biases then fp32 multipliers) then the input rows [128][ldx], the w1
// ring [2][w1 slice] and the w2 ring [2][w2 slice]; the epilogue's output
// rows [128][kLdY] reuse the input rows and rings once the last step is
// multiplied.
template <class Tr>
struct Layout {
  using T = typename Tr::T;
  int cin_pad, ldx, ldw1, b1, x, w1, w2, bytes;
  __host__ __device__ explicit Layout(int cin) {
    constexpr int E = int(sizeof(T));
    cin_pad = (cin + Tr::kK - 1) / Tr::kK * Tr::kK;
    ldx = cin_pad + Tr::kPad;
    ldw1 = Tr::kQuantized ? cin_pad + Tr::kPad : Tr::kLdW1;
    const int w1_rows = Tr::kQuantized ? Tr::kHC : cin_pad, w2_rows = Tr::kQuantized ? Tr::TN : Tr::kHC;
    b1 = Tr::TN * Tr::kChannelBytes;
    x = b1 + 2 * Tr::kHC * Tr::kChannelBytes;
    w1 = x + Tr::kTileM * ldx * E;
    w2 = w1 + 2 * w1_rows * ldw1 * E;
    const int end = w2 + 2 * w2_rows * Tr::kLdW2 * E, epilogue = x + Tr::kTileM * Tr::kLdY * E;
    bytes = end > epilogue ? end : epilogue;
  }
};

struct Run {
  // 16-byte paths allowed (alignment and channel counts): x rows, the step's
  // w1 slice and b1 (int8: and multipliers), the w2 slice and b2, y rows.
  bool vec_x, vec_w1, vec_w2, vec_y;
};

// rows x cols (cols a multiple of kVec) of dst (row stride ld, elements) from
// src (row stride src_ld): element (r, c) is src[row_of(r) * src_ld + c] for
// row_of(r) < valid_rows and c < valid_cols, zero elsewhere.
struct SameRow {
  __device__ __forceinline__ int operator()(int r) const { return r; }
};
template <class Tr, class RowOf = SameRow>
__device__ __forceinline__ void stage_block(typename Tr::T* dst, int ld, const typename Tr::T* src, int src_ld,
                                            int rows, int valid_rows, int cols, int valid_cols, bool vec,
                                            RowOf row_of = {}) {
  constexpr int V = Tr::kVec;
  const int per_row = cols / V, total = rows * per_row;
  dw_pw_detail::with_vec(vec, [&](auto vec_c) {
    for (int i = int(threadIdx.x); i < total; i += Tr::kThreads) {
      const int r = i / per_row, c = (i - r * per_row) * V, src_r = row_of(r);
      const int valid = src_r < valid_rows ? dw_pw_detail::clamp_valid(valid_cols - c, V) : 0;
      dw_pw_detail::copy16<vec_c.value>(dst + r * ld + c, valid > 0 ? src + src_r * src_ld + c : src, valid);
    }
  });
}

// int8: which of a step's intermediate channels accumulator tile j holds in
// column n (and so which w1 row is staged as shared row 8j + n): tiles 2i
// and 2i + 1 share the 16-channel half i, lane t's columns 2t, 2t + 1 of them
// being channels 4t, 4t + 1 and 4t + 2, 4t + 3 of it, the k order of an A
// fragment (a0: k 4t..4t+3 of the low 16, a2: of the high 16).
__host__ __device__ constexpr int int8_hidden_channel(int j, int n) {
  return 16 * (j / 2) + 4 * (n / 2) + 2 * (j % 2) + n % 2;
}
struct Int8HiddenRows {
  __device__ __forceinline__ int operator()(int r) const { return int8_hidden_channel(r / 8, r % 8); }
};

// A slice of per-channel int32 biases or fp32 multipliers (4-byte values),
// staged as bytes by the int8 kernel's copies.
template <class Tr, typename V>
__device__ __forceinline__ void stage_channel_values(unsigned char* dst, const V* src, int count, int valid, bool vec) {
  static_assert(sizeof(V) == 4 && std::is_same_v<typename Tr::T, int8_t>, "int8 kernel's 4-byte channel values");
  stage_block<Tr>(reinterpret_cast<int8_t*>(dst), 0, reinterpret_cast<const int8_t*>(src), 0, 1, 1, 4 * count,
                  4 * valid, vec);
}

// The two GEMMs of one warp and step, per element type: 16-bit types through
// ldmatrix and m16n8k16, float32 as TF32 (m16n8k8, B from scalar loads).
// Accumulator tile j of an MMA holds, in lane (g = lane / 4, t = lane % 4),
// rows g and g + 8 x columns 8j + 2t and 8j + 2t + 1.
enum class GemmPath { k16Bit, kTf32, kInt8 };
template <typename T>
constexpr GemmPath gemm_path() {
  return sizeof(T) == 4 ? GemmPath::kTf32 : sizeof(T) == 1 ? GemmPath::kInt8 : GemmPath::k16Bit;
}

template <class Tr, GemmPath = gemm_path<typename Tr::T>()>
struct WarpGemms;

template <class Tr>
struct WarpGemms<Tr, GemmPath::k16Bit> {
  using T = typename Tr::T;
  using Mma = MmaSync<T>;
  // h (16 x 8 kHTiles) = x rows (16 x cin_pad, x_s row stride ldx) . w1
  // columns (w1_s: the step's, from the first one h holds).
  static __device__ __forceinline__ void first(float (&h)[Tr::kHTiles][4], const T* x_s, int ldx, int cin_pad,
                                               const T* w1_s) {
    const int lane = threadIdx.x % 32;
    const T* a_lane = x_s + (lane % 16) * ldx + lane / 16 * 8;
    const T* b_lane = w1_s + (lane % 16) * Tr::kLdW1 + lane / 16 * 8;
#pragma unroll 2
    for (int kk = 0; kk < cin_pad; kk += 16) {
      uint32_t a[4];
      ldmatrix_x4(a, a_lane + kk);
#pragma unroll
      for (int j = 0; j < Tr::kHTiles; j += 2) {
        uint32_t b[4];  // k 0-7 / 8-15 of columns 8j..8j+7, then of the next 8
        ldmatrix_x4_trans(b, b_lane + kk * Tr::kLdW1 + j * 8);
        Mma::run(h[j], a, b[0], b[1]);
        Mma::run(h[j + 1], a, b[2], b[3]);
      }
    }
  }
  // y (16 x TN) += h (rounded to T) . w2 rows (w2_s: the step's, from the
  // first one h holds). A fragment of k step s, from accumulator tiles 2s
  // and 2s + 1: (row g, k 2t..2t+1), (g + 8, 2t..), (g, 8 + 2t..), (g + 8, 8 + 2t..).
  static __device__ __forceinline__ void second(float (&y)[Tr::kYTiles][4], const float (&h)[Tr::kHTiles][4],
                                                const T* w2_s) {
    const int lane = threadIdx.x % 32;
    const T* b_lane = w2_s + (lane % 16) * Tr::kLdW2 + lane / 16 * 8;
#pragma unroll
    for (int s = 0; s < Tr::kHTiles / 2; ++s) {
      const uint32_t a[4] = {Elem<T>::pack2(h[2 * s][0], h[2 * s][1]), Elem<T>::pack2(h[2 * s][2], h[2 * s][3]),
                             Elem<T>::pack2(h[2 * s + 1][0], h[2 * s + 1][1]),
                             Elem<T>::pack2(h[2 * s + 1][2], h[2 * s + 1][3])};
#pragma unroll
      for (int j = 0; j < Tr::kYTiles; j += 2) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, b_lane + s * 16 * Tr::kLdW2 + j * 8);
        Mma::run(y[j], a, b[0], b[1]);
        Mma::run(y[j + 1], a, b[2], b[3]);
      }
    }
  }
};

template <class Tr>
struct WarpGemms<Tr, GemmPath::kTf32> {
  using Mma = MmaSync<float>;
  static __device__ __forceinline__ void first(float (&h)[Tr::kHTiles][4], const float* x_s, int ldx, int cin_pad,
                                               const float* w1_s) {
    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    // ldmatrix on 32-bit pairs gives the TF32 A layout: (g, t), (g + 8, t),
    // (g, t + 4), (g + 8, t + 4).
    const float* a_lane = x_s + (lane % 16) * ldx + lane / 16 * 4;
    const float* b_lane = w1_s + t * Tr::kLdW1 + g;
#pragma unroll 2
    for (int kk = 0; kk < cin_pad; kk += 8) {
      uint32_t a[4];
      ldmatrix_x4(a, a_lane + kk);
#pragma unroll
      for (int r = 0; r < 4; ++r) a[r] = tf32_bits(__uint_as_float(a[r]));
#pragma unroll
      for (int j = 0; j < Tr::kHTiles; ++j) {
        const float* b = b_lane + kk * Tr::kLdW1 + j * 8;
        Mma::run(h[j], a, tf32_bits(b[0]), tf32_bits(b[4 * Tr::kLdW1]));
      }
    }
  }
  // The A fragment of k step s (8 intermediate channels) wants (g, t),
  // (g + 8, t), (g, t + 4), (g + 8, t + 4); accumulator tile s holds
  // channels 2t and 2t + 1. Reading k index t as channel 2t and t + 4 as
  // 2t + 1 makes the accumulators the operands as they are; the B rows
  // (w2 rows of the step) are read in that order too.
  static __device__ __forceinline__ void second(float (&y)[Tr::kYTiles][4], const float (&h)[Tr::kHTiles][4],
                                                const float* w2_s) {
    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const float* b_lane = w2_s + 2 * t * Tr::kLdW2 + g;
#pragma unroll
    for (int s = 0; s < Tr::kHTiles; ++s) {
      const uint32_t a[4] = {tf32_bits(h[s][0]), tf32_bits(h[s][2]), tf32_bits(h[s][1]), tf32_bits(h[s][3])};
#pragma unroll
      for (int j = 0; j < Tr::kYTiles; ++j) {
        const float* b = b_lane + s * 8 * Tr::kLdW2 + j * 8;
        Mma::run(y[j], a, tf32_bits(b[0]), tf32_bits(b[Tr::kLdW2]));
      }
    }
  }
};

// int8, m16n8k32: A fragments a0..a3 are (row g, k 4t..4t+3), (g + 8, same),
// (g, 16 + 4t..), (g + 8, 16 + 4t..); B fragments (k 4t..4t+3, column g),
// (k 16 + 4t.., g). Both operands come through ldmatrix from rows of
// contiguous k: matrices (rows 0-7, bytes 0-15), (0-7, 16-31), (8-15, 0-15),
// (8-15, 16-31) are a0, a2, a1, a3 of 16 A rows and b0, b1, b0, b1 of two
// 8-column B tiles.
template <class Tr>
struct WarpGemms<Tr, GemmPath::kInt8> {
  using Mma = MmaSync<int8_t>;
  // h (16 x kHC, columns in int8_hidden_channel order) = x rows (16 x
  // cin_pad) . the step's w1 rows (w1_s, row stride ldw1, staged in that order).
  static __device__ __forceinline__ void first(int (&h)[Tr::kHTiles][4], const int8_t* x_s, int ldx, int cin_pad,
                                               const int8_t* w1_s, int ldw1) {
    const int lane = threadIdx.x % 32;
    const int8_t* a_lane = x_s + (lane % 16) * ldx + lane / 16 * 16;
    const int8_t* b_lane = w1_s + (lane / 16 * 8 + lane % 8) * ldw1 + lane / 8 % 2 * 16;
#pragma unroll 2
    for (int kk = 0; kk < cin_pad; kk += 32) {
      uint32_t a[4];
      ldmatrix_x4(a, a_lane + kk);
#pragma unroll
      for (int j = 0; j < Tr::kHTiles; j += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, b_lane + j * 8 * ldw1 + kk);
        Mma::run(h[j], a, b[0], b[1]);
        Mma::run(h[j + 1], a, b[2], b[3]);
      }
    }
  }
  // y (16 x TN) += q (the requantized intermediate, integers in fp32, to be
  // rounded by the packing) . the step's w2 rows (w2_s: [TN][kLdW2], k
  // contiguous). k step s is tiles 4s..4s+3: int8_hidden_channel puts lane
  // t's k 4t..4t+3 in tiles 4s, 4s + 1 and 16 + 4t.. in 4s + 2, 4s + 3.
  static __device__ __forceinline__ void second(int (&y)[Tr::kYTiles][4], const float (&q)[Tr::kHTiles][4],
                                                const int8_t* w2_s) {
    const int lane = threadIdx.x % 32;
    const int8_t* b_lane = w2_s + (lane / 16 * 8 + lane % 8) * Tr::kLdW2 + lane / 8 % 2 * 16;
#pragma unroll
    for (int s = 0; s < Tr::kHTiles / 4; ++s) {
      const float a0[4] = {q[4 * s][0], q[4 * s][1], q[4 * s + 1][0], q[4 * s + 1][1]};
      const float a1[4] = {q[4 * s][2], q[4 * s][3], q[4 * s + 1][2], q[4 * s + 1][3]};
      const float a2[4] = {q[4 * s + 2][0], q[4 * s + 2][1], q[4 * s + 3][0], q[4 * s + 3][1]};
      const float a3[4] = {q[4 * s + 2][2], q[4 * s + 2][3], q[4 * s + 3][2], q[4 * s + 3][3]};
      const uint32_t a[4] = {Elem<int8_t>::pack4(a0), Elem<int8_t>::pack4(a1), Elem<int8_t>::pack4(a2),
                             Elem<int8_t>::pack4(a3)};
#pragma unroll
      for (int j = 0; j < Tr::kYTiles; j += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, b_lane + j * 8 * Tr::kLdW2 + 32 * s);
        Mma::run(y[j], a, b[0], b[1]);
        Mma::run(y[j + 1], a, b[2], b[3]);
      }
    }
  }
};

// One warp's share of a step (w1_cols, b1_cols, w2_rows: the step's slices
// in shared memory): the first GEMM, b1 + act1 in fp32, the second GEMM into
// y. Columns past `hidden` are zeros in w1 and b1 and zero rows in w2, so
// they add nothing.
template <class Tr>
__device__ __forceinline__ void hidden_step(float (&y)[Tr::kYTiles][4], const typename Tr::T* x_rows, int ldx,
                                             int cin_pad, const typename Tr::T* w1_cols,
                                             const typename Tr::T* b1_cols, const typename Tr::T* w2_rows, int act1) {
  using T = typename Tr::T;
  const int t = threadIdx.x % 4;
  float h[Tr::kHTiles][4];
#pragma unroll
  for (int j = 0; j < Tr::kHTiles; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) h[j][e] = 0.f;
  WarpGemms<Tr>::first(h, x_rows, ldx, cin_pad, w1_cols);
  with_activation(act1, [&](auto kind) {
#pragma unroll
    for (int j = 0; j < Tr::kHTiles; ++j) {
      const float b_lo = Elem<T>::to_float(b1_cols[8 * j + 2 * t]);
      const float b_hi = Elem<T>::to_float(b1_cols[8 * j + 2 * t + 1]);
      h[j][0] = apply_activation(h[j][0] + b_lo, kind.value);
      h[j][1] = apply_activation(h[j][1] + b_hi, kind.value);
      h[j][2] = apply_activation(h[j][2] + b_lo, kind.value);
      h[j][3] = apply_activation(h[j][3] + b_hi, kind.value);
    }
  });
  WarpGemms<Tr>::second(y, h, w2_rows);
}

// int8: the step's w1 rows (in int8_hidden_channel order) and w2 rows; its
// int32 biases and fp32 multipliers (channel_values: [kHC] of each) requantize
// the intermediate, in the reference's steps (requantize.h), before the
// second GEMM.
template <class Tr>
__device__ __forceinline__ void hidden_step_int8(int (&y)[Tr::kYTiles][4], const int8_t* x_rows, int ldx, int cin_pad,
                                                 const int8_t* w1_rows, int ldw1, const unsigned char* channel_values,
                                                 const int8_t* w2_rows, const PwPwQuant& quant) {
  const int t = threadIdx.x % 4;
  int h[Tr::kHTiles][4];
#pragma unroll
  for (int j = 0; j < Tr::kHTiles; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) h[j][e] = 0;
  WarpGemms<Tr>::first(h, x_rows, ldx, cin_pad, w1_rows, ldw1);
  const auto* bias = reinterpret_cast<const int2*>(channel_values);
  const auto* multiplier = reinterpret_cast<const float2*>(channel_values + 4 * Tr::kHC);
  float q[Tr::kHTiles][4];
#pragma unroll
  for (int j = 0; j < Tr::kHTiles; ++j) {
    const int pair = int8_hidden_channel(j, 2 * t) / 2;  // the lane's two channels of tile j
    const int2 b = bias[pair];
    const float2 m = multiplier[pair];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      q[j][2 * half] = requantize_unrounded(__int2float_rn(h[j][2 * half] + b.x), m.x, quant.q1min, quant.q1max);
      q[j][2 * half + 1] =
          requantize_unrounded(__int2float_rn(h[j][2 * half + 1] + b.y), m.y, quant.q1min, quant.q1max);
    }
  }
  WarpGemms<Tr>::second(y, q, w2_rows);
}

template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kMinBlocks)
    pw_pw_kernel(const PwPwShape s, const PwPwPointers p, const int act1, const int act2, const Run run) {
  using T = typename Tr::T;
  extern __shared__ __align__(16) unsigned char smem[];
  const Layout<Tr> L(int(s.cin));
  const int cin = int(s.cin), hidden = int(s.hidden), cout = int(s.cout), co0 = int(blockIdx.y) * Tr::TN;
  const int64_t m0 = int64_t(blockIdx.x) * Tr::kTileM;
  const int rows = s.m - m0 < Tr::kTileM ? int(s.m - m0) : Tr::kTileM;
  T* const x_s = reinterpret_cast<T*>(smem + L.x);
  unsigned char* const b2_bytes = smem;
  auto b1_bytes = [&](int buf) { return smem + L.b1 + buf * Tr::kHC * Tr::kChannelBytes; };
  const int w1_slice = (Tr::kQuantized ? Tr::kHC : L.cin_pad) * L.ldw1;
  auto w1_s = [&](int buf) { return reinterpret_cast<T*>(smem + L.w1) + buf * w1_slice; };
  const int w2_slice = (Tr::kQuantized ? Tr::TN : Tr::kHC) * Tr::kLdW2;
  auto w2_s = [&](int buf) { return reinterpret_cast<T*>(smem + L.w2) + buf * w2_slice; };
  const T* const w1 = static_cast<const T*>(p.w1);
  const T* const w2 = static_cast<const T*>(p.w2);

  // The output bias and the block's input rows travel with step 0's copies.
  if constexpr (Tr::kQuantized) {
    stage_channel_values<Tr>(b2_bytes, static_cast<const int32_t*>(p.b2) + co0, Tr::TN, cout - co0, run.vec_w2);
    stage_channel_values<Tr>(b2_bytes + 4 * Tr::TN, p.quant.m2 + co0, Tr::TN, cout - co0, run.vec_w2);
  } else {
    stage_block<Tr>(reinterpret_cast<T*>(b2_bytes), Tr::TN, static_cast<const T*>(p.b2) + co0, 0, 1, 1, Tr::TN,
                    cout - co0, run.vec_w2);
  }
  stage_block<Tr>(x_s, L.ldx, static_cast<const T*>(p.x) + m0 * cin, cin, Tr::kTileM, rows, L.cin_pad, cin,
                  run.vec_x);
  const int steps = (hidden + Tr::kHC - 1) / Tr::kHC;
  // One commit per call (empty past the last step): "all but the newest
  // group landed" then always means "this step landed".
  auto issue = [&](int step) {
    if (step < steps) {
      const int h0 = step * Tr::kHC, buf = step % 2;
      if constexpr (Tr::kQuantized) {  // w1 (hidden, Cin), w2 (Cout, hidden): rows per output channel
        stage_channel_values<Tr>(b1_bytes(buf), static_cast<const int32_t*>(p.b1) + h0, Tr::kHC, hidden - h0,
                                 run.vec_w1);
        stage_channel_values<Tr>(b1_bytes(buf) + 4 * Tr::kHC, p.quant.m1 + h0, Tr::kHC, hidden - h0, run.vec_w1);
        stage_block<Tr>(w1_s(buf), L.ldw1, w1 + int64_t(h0) * cin, cin, Tr::kHC, hidden - h0, L.cin_pad, cin,
                        run.vec_w1, Int8HiddenRows{});
        stage_block<Tr>(w2_s(buf), Tr::kLdW2, w2 + int64_t(co0) * hidden + h0, hidden, Tr::TN, cout - co0, Tr::kHC,
                        hidden - h0, run.vec_w2);
      } else {
        stage_block<Tr>(reinterpret_cast<T*>(b1_bytes(buf)), Tr::kHC, static_cast<const T*>(p.b1) + h0, 0, 1, 1,
                        Tr::kHC, hidden - h0, run.vec_w1);
        stage_block<Tr>(w1_s(buf), Tr::kLdW1, w1 + h0, hidden, L.cin_pad, cin, Tr::kHC, hidden - h0, run.vec_w1);
        stage_block<Tr>(w2_s(buf), Tr::kLdW2, w2 + int64_t(h0) * cout + co0, cout, Tr::kHC, hidden - h0, Tr::TN,
                        cout - co0, run.vec_w2);
      }
    }
    cp_async_commit();
  };

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  typename Tr::Acc y[Tr::kYTiles][4];
#pragma unroll
  for (int j = 0; j < Tr::kYTiles; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) y[j][e] = 0;
  issue(0);
  for (int step = 0; step < steps; ++step) {
    issue(step + 1);  // into the buffer the previous step used (all warps are past it)
    cp_async_wait<1>();
    __syncthreads();
    const int buf = step % 2;
    if constexpr (Tr::kQuantized)
      hidden_step_int8<Tr>(y, x_s + warp * 16 * L.ldx, L.ldx, L.cin_pad, w1_s(buf), L.ldw1, b1_bytes(buf),
                           w2_s(buf), p.quant);
    else
      hidden_step<Tr>(y, x_s + warp * 16 * L.ldx, L.ldx, L.cin_pad, w1_s(buf), reinterpret_cast<T*>(b1_bytes(buf)),
                      w2_s(buf), act1);
    __syncthreads();  // every warp is done with this buffer before step + 2 refills it
  }
  cp_async_wait<0>();

  // Epilogue: b2 + act2 (int8: the requantization), rounded, into shared
  // output rows (over the input rows and rings, which every warp is done
  // with), then whole 16-byte rows out.
  T* const y_s = x_s;
  if constexpr (Tr::kQuantized) {
    const auto* bias = reinterpret_cast<const int32_t*>(b2_bytes);
    const auto* multiplier = reinterpret_cast<const float*>(b2_bytes + 4 * Tr::TN);
    const PwPwQuant& q = p.quant;
#pragma unroll
    for (int j = 0; j < Tr::kYTiles; ++j) {
      const int col = 8 * j + 2 * t;
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        T* dst = y_s + (warp * 16 + g + 8 * half) * Tr::kLdY + col;
#pragma unroll
        for (int e = 0; e < 2; ++e)
          dst[e] = Elem<T>::from_float(requantize_unrounded(__int2float_rn(y[j][2 * half + e] + bias[col + e]),
                                                            multiplier[col + e], q.q2min, q.q2max));
      }
    }
  } else {
    const T* const b2_s = reinterpret_cast<const T*>(b2_bytes);
    with_activation(act2, [&](auto kind) {
#pragma unroll
      for (int j = 0; j < Tr::kYTiles; ++j) {
        const int col = 8 * j + 2 * t;
        const float b_lo = Elem<T>::to_float(b2_s[col]), b_hi = Elem<T>::to_float(b2_s[col + 1]);
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          T* dst = y_s + (warp * 16 + g + 8 * half) * Tr::kLdY + col;
          dst[0] = Elem<T>::from_float(apply_activation(y[j][2 * half] + b_lo, kind.value));
          dst[1] = Elem<T>::from_float(apply_activation(y[j][2 * half + 1] + b_hi, kind.value));
        }
      }
    });
  }
  __syncthreads();
  T* const out = static_cast<T*>(p.y) + m0 * cout + co0;
  constexpr int V = Tr::kVec, kPerRow = Tr::TN / V;
  for (int i = int(threadIdx.x); i < Tr::kTileM * kPerRow; i += Tr::kThreads) {
    const int r = i / kPerRow, c = i % kPerRow * V;
    if (r >= rows || co0 + c >= cout) continue;
    const T* src = y_s + r * Tr::kLdY + c;
    T* dst = out + int64_t(r) * cout + c;
    if (run.vec_y) {  // Cout a multiple of V, y 16-byte aligned: the whole vector is in range
      const uint4 v = *reinterpret_cast<const uint4*>(src);
      store_global_u32x4(dst, v.x, v.y, v.z, v.w);
    } else {
      for (int e = 0; e < V && co0 + c + e < cout; ++e) dst[e] = src[e];
    }
  }
}

}  // namespace pw_pw_detail

template <typename T, int TN>
cudaError_t launch_pw_pw(const PwPwShape& s, const PwPwPointers& p, int act1, int act2, cudaStream_t stream) {
  using Tr = pw_pw_detail::Traits<T, TN>;
  constexpr auto kernel = pw_pw_detail::pw_pw_kernel<Tr>;
  if (s.m == 0) return cudaSuccess;  // empty output
  const int64_t m_tiles = (s.m + Tr::kTileM - 1) / Tr::kTileM, co_tiles = (s.cout + TN - 1) / TN;
  if (m_tiles > INT_MAX || co_tiles > 65535) return cudaErrorInvalidConfiguration;
  constexpr int V = Tr::kVec;
  pw_pw_detail::Run run{};
  run.vec_x = s.cin % V == 0 && aligned16(p.x);
  if constexpr (Tr::kQuantized) {  // w1 rows of Cin, w2 rows of hidden; 4-byte channel values, 4 per copy
    run.vec_w1 = s.cin % V == 0 && s.hidden % 4 == 0 && aligned16(p.w1) && aligned16(p.b1) && aligned16(p.quant.m1);
    run.vec_w2 = s.hidden % V == 0 && s.cout % 4 == 0 && aligned16(p.w2) && aligned16(p.b2) && aligned16(p.quant.m2);
  } else {
    run.vec_w1 = s.hidden % V == 0 && aligned16(p.w1) && aligned16(p.b1);
    run.vec_w2 = s.cout % V == 0 && aligned16(p.w2) && aligned16(p.b2);
  }
  run.vec_y = s.cout % V == 0 && aligned16(p.y);
  const int bytes = pw_pw_detail::Layout<Tr>(int(s.cin)).bytes;
  if (cudaError_t err = allow_dynamic_smem<kernel>(bytes); err != cudaSuccess) return err;
  kernel<<<dim3(unsigned(m_tiles), unsigned(co_tiles)), Tr::kThreads, bytes, stream>>>(s, p, act1, act2, run);
  return cudaGetLastError();
}

}  // namespace jax_fcm

// Explicit instantiations for one element type: every output tile
// pw_pw_tile_n picks.
#define FCM_INSTANTIATE_PW_PW_ONE(T, TN)                                                                   \
  template cudaError_t jax_fcm::launch_pw_pw<T, TN>(const jax_fcm::PwPwShape&, const jax_fcm::PwPwPointers&, \
                                                    int, int, cudaStream_t);
#define FCM_INSTANTIATE_PW_PW(T)     \
  FCM_INSTANTIATE_PW_PW_ONE(T, 32)   \
  FCM_INSTANTIATE_PW_PW_ONE(T, 64)   \
  FCM_INSTANTIATE_PW_PW_ONE(T, 96)   \
  FCM_INSTANTIATE_PW_PW_ONE(T, 128)
