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
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "activations.h"
#include "async_copy.cuh"
#include "dw_pw_stage.cuh"
#include "dynamic_smem.cuh"
#include "element.cuh"
#include "mma_sync.cuh"
#include "pw_pw_launch.h"

namespace jax_fcm {
namespace pw_pw_detail {

template <typename T_, int TN_>
struct Traits {
  using T = T_;
  static constexpr int TN = TN_;
  static constexpr int kThreads = 256, kWarps = kThreads / 32, kTileM = 16 * kWarps;
  static constexpr int kVec = 16 / int(sizeof(T));   // elements per 16-byte copy
  static constexpr int kK = MmaSync<T>::kK;          // MMA depth: 16 (16-bit), 8 (TF32)
  static constexpr int kPad = kVec;                  // 16 bytes per shared row: conflict-free ldmatrix
  // 8 warps per SM leave the MMA and shared-memory latencies exposed (H100,
  // ConvNeXt's 96 -> 384 -> 96 with one block per SM: 0.46 issued warps per
  // scheduler, stalls on fixed-latency dependencies first; two blocks: 1.24x
  // faster): two resident blocks where their accumulators fit 128 registers
  // without spilling ...
  static constexpr int kMinBlocks = TN <= (sizeof(T) == 2 ? 96 : 64) ? 2 : 1;
  // ... with intermediate steps of 128 bytes of channels, or 64 bytes (16-bit
  // types, two blocks per SM: 16 fewer accumulator registers, and half the
  // w1 and w2 slices in shared memory, so two blocks fit up to Cin = 192).
  static constexpr int kHC = (sizeof(T) == 2 && kMinBlocks == 2 ? 64 : 128) / int(sizeof(T));
  static constexpr int kLdW1 = kHC + kPad, kLdW2 = TN + kPad, kLdY = TN + kPad;
  static constexpr int kHTiles = kHC / 8, kYTiles = TN / 8;  // 8-column MMA tiles per warp
  static_assert(TN % 32 == 0 && TN <= 128, "output tile");
};

// Shared memory, in bytes from the start: [b2: TN] [b1: 2 x kHC] then the
// input rows [128][ldx], the w1 ring [2][cin_pad][kLdW1] and the w2 ring
// [2][kHC][kLdW2]; the epilogue's output rows [128][kLdY] reuse the input
// rows and rings once the last step is multiplied.
template <class Tr>
struct Layout {
  using T = typename Tr::T;
  int cin_pad, ldx, b1, x, w1, w2, bytes;
  __host__ __device__ explicit Layout(int cin) {
    constexpr int E = int(sizeof(T));
    cin_pad = (cin + Tr::kK - 1) / Tr::kK * Tr::kK;
    ldx = cin_pad + Tr::kPad;
    b1 = Tr::TN * E;
    x = b1 + 2 * Tr::kHC * E;
    w1 = x + Tr::kTileM * ldx * E;
    w2 = w1 + 2 * cin_pad * Tr::kLdW1 * E;
    const int end = w2 + 2 * Tr::kHC * Tr::kLdW2 * E, epilogue = x + Tr::kTileM * Tr::kLdY * E;
    bytes = end > epilogue ? end : epilogue;
  }
};

struct Run {
  bool vec_x, vec_w1, vec_w2, vec_y;  // 16-byte paths allowed (alignment and channel counts)
};

// rows x cols (cols a multiple of kVec) of dst (row stride ld, elements) from
// src (row stride src_ld): element (r, c) is src[r * src_ld + c] for
// r < valid_rows and c < valid_cols, zero elsewhere.
template <class Tr>
__device__ __forceinline__ void stage_block(typename Tr::T* dst, int ld, const typename Tr::T* src, int src_ld,
                                            int rows, int valid_rows, int cols, int valid_cols, bool vec) {
  constexpr int V = Tr::kVec;
  const int per_row = cols / V, total = rows * per_row;
  dw_pw_detail::with_vec(vec, [&](auto vec_c) {
    for (int i = int(threadIdx.x); i < total; i += Tr::kThreads) {
      const int r = i / per_row, c = (i - r * per_row) * V;
      const int valid = r < valid_rows ? dw_pw_detail::clamp_valid(valid_cols - c, V) : 0;
      dw_pw_detail::copy16<vec_c.value>(dst + r * ld + c, valid > 0 ? src + r * src_ld + c : src, valid);
    }
  });
}

// The two GEMMs of one warp and step, per element type: 16-bit types through
// ldmatrix and m16n8k16, float32 as TF32 (m16n8k8, B from scalar loads).
// Accumulator tile j of an MMA holds, in lane (g = lane / 4, t = lane % 4),
// rows g and g + 8 x columns 8j + 2t and 8j + 2t + 1.
template <class Tr, bool Tf32 = (sizeof(typename Tr::T) == 4)>
struct WarpGemms;

template <class Tr>
struct WarpGemms<Tr, false> {
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
struct WarpGemms<Tr, true> {
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

template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, Tr::kMinBlocks)
    pw_pw_kernel(const PwPwShape s, const PwPwPointers p, const int act1, const int act2, const Run run) {
  using T = typename Tr::T;
  extern __shared__ __align__(16) unsigned char smem[];
  const Layout<Tr> L(int(s.cin));
  const int cin = int(s.cin), hidden = int(s.hidden), cout = int(s.cout), co0 = int(blockIdx.y) * Tr::TN;
  const int64_t m0 = int64_t(blockIdx.x) * Tr::kTileM;
  const int rows = s.m - m0 < Tr::kTileM ? int(s.m - m0) : Tr::kTileM;
  T* const b2_s = reinterpret_cast<T*>(smem);
  T* const x_s = reinterpret_cast<T*>(smem + L.x);
  auto b1_s = [&](int buf) { return reinterpret_cast<T*>(smem + L.b1) + buf * Tr::kHC; };
  auto w1_s = [&](int buf) { return reinterpret_cast<T*>(smem + L.w1) + buf * L.cin_pad * Tr::kLdW1; };
  auto w2_s = [&](int buf) { return reinterpret_cast<T*>(smem + L.w2) + buf * Tr::kHC * Tr::kLdW2; };
  const T* const w1 = static_cast<const T*>(p.w1);
  const T* const w2 = static_cast<const T*>(p.w2);
  const T* const b1 = static_cast<const T*>(p.b1);

  // The output bias and the block's input rows travel with step 0's copies.
  stage_block<Tr>(b2_s, Tr::TN, static_cast<const T*>(p.b2) + co0, 0, 1, 1, Tr::TN, cout - co0, run.vec_w2);
  stage_block<Tr>(x_s, L.ldx, static_cast<const T*>(p.x) + m0 * cin, cin, Tr::kTileM, rows, L.cin_pad, cin,
                  run.vec_x);
  const int steps = (hidden + Tr::kHC - 1) / Tr::kHC;
  // One commit per call (empty past the last step): "all but the newest
  // group landed" then always means "this step landed".
  auto issue = [&](int step) {
    if (step < steps) {
      const int h0 = step * Tr::kHC, buf = step % 2;
      stage_block<Tr>(b1_s(buf), Tr::kHC, b1 + h0, 0, 1, 1, Tr::kHC, hidden - h0, run.vec_w1);
      stage_block<Tr>(w1_s(buf), Tr::kLdW1, w1 + h0, hidden, L.cin_pad, cin, Tr::kHC, hidden - h0, run.vec_w1);
      stage_block<Tr>(w2_s(buf), Tr::kLdW2, w2 + int64_t(h0) * cout + co0, cout, Tr::kHC, hidden - h0, Tr::TN,
                      cout - co0, run.vec_w2);
    }
    cp_async_commit();
  };

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  float y[Tr::kYTiles][4];
#pragma unroll
  for (int j = 0; j < Tr::kYTiles; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) y[j][e] = 0.f;
  issue(0);
  for (int step = 0; step < steps; ++step) {
    issue(step + 1);  // into the buffer the previous step used (all warps are past it)
    cp_async_wait<1>();
    __syncthreads();
    const int buf = step % 2;
    hidden_step<Tr>(y, x_s + warp * 16 * L.ldx, L.ldx, L.cin_pad, w1_s(buf), b1_s(buf), w2_s(buf), act1);
    __syncthreads();  // every warp is done with this buffer before step + 2 refills it
  }
  cp_async_wait<0>();

  // Epilogue: b2 + act2, rounded, into shared output rows (over the input
  // rows and rings, which every warp is done with), then whole 16-byte rows out.
  T* const y_s = x_s;
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
  run.vec_w1 = s.hidden % V == 0 && aligned16(p.w1) && aligned16(p.b1);
  run.vec_w2 = s.cout % V == 0 && aligned16(p.w2) && aligned16(p.b2);
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
