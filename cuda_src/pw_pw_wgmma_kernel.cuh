// Fused PW -> PW on Hopper's warpgroup MMA (wgmma, sm_90a), 16-bit types:
// y = act2(act1(x . w1 + b1) . w2 + b2), the contract of pw_pw_kernel.cuh,
// whose mma.sync version ran ConvNeXt's 96 -> 384 -> 96 at ~200 TFLOP/s and
// lost to cuBLAS on wider pairs.
//
// A block owns kTileM = 192 pixel rows and TN (64, 96 or 128) output
// channels: three warpgroups of 64 rows; or, for TN = 192 (ConvNeXt's
// 192-channel blocks in one column tile, so the first GEMM is not computed
// twice), 128 rows in two warpgroups, whose 96 output accumulators per thread
// would not fit the register file three times over. Thread 0 loads the block's input
// rows once (TMA boxes of 64 channels, 128-byte swizzle: the layout wgmma
// reads) and, per step of 64 intermediate channels, that step's w1 columns
// (all Cin rows) and w2 rows into a ring of slots with full / empty
// barriers. Each warpgroup, per step,
//   1. multiplies its rows by the w1 columns (wgmma, both from shared
//      memory) into 32 fp32 registers,
//   2. adds b1, applies act1 and packs pairs to the input dtype: wgmma's
//      accumulator layout is, pair for pair, its register-A layout, so the
//      intermediate becomes the next wgmma's A operand in place,
//   3. issues the second GEMM (A from registers) into its output
//      accumulators; it runs while the next step's first GEMM is queued.
// The warpgroups only share slots, so while one applies its activation the
// others' GEMMs keep the tensor cores busy (a single warpgroup would leave
// them idle then). Rows and channels past the matrices come back from the
// copy engine as zeros. The epilogue is the pointwise wgmma kernel's
// (wgmma_epilogue.cuh).
//
// With kBlock (jax_fcm.convnext_block) the kernel is the rest of a ConvNeXt
// block after its depthwise conv: each warpgroup layer-normalizes its input
// rows in shared memory before the first GEMM (they are resident anyway, and
// only its own wgmmas read them), and the epilogue adds the layer-scaled
// result to the block's input. XLA runs each of those as a pass over the
// whole tensor.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "activations.h"
#include "dynamic_smem.cuh"
#include "element.cuh"
#include "pw_pw_wgmma_launch.h"
#include "tma.cuh"
#include "wgmma.cuh"
#include "wgmma_epilogue.cuh"

namespace jax_fcm {
namespace pw_pw_wgmma_detail {

template <typename T_, int TN_, bool kBlock_ = false>
struct Traits {
  using T = T_;
  static constexpr bool kBlock = kBlock_;
  static_assert(sizeof(T) == 2, "wgmma path: 16-bit element types");
  static_assert(TN_ == 64 || TN_ == 96 || TN_ == 128 || TN_ == 192, "wgmma N");
  static constexpr int TN = TN_;
  static constexpr int kGroups = TN_ > 128 ? 2 : 3;  // warpgroups, 64 rows each
  static constexpr int kThreads = 128 * kGroups;
  static constexpr int kTileM = 64 * kGroups;
  static_assert(kTileM == pw_pw_wgmma_tile_m(TN), "the host's tile rows (pw_pw_params.h)");
  static constexpr int kHC = 64;                   // intermediate channels per step: one swizzle row of w1
  static constexpr int kXBoxBytes = kTileM * 128;  // x box [kTileM][64 channels]
  static constexpr int kAtomBytes = 64 * 128;      // weight box [64 rows][64 columns]
  static constexpr int kW2Atoms = (TN + 63) / 64;
  static constexpr int kMaxStages = 4;
  static constexpr int kScratchLd = kWgmmaScratchLd<TN>;  // epilogue rows (floats)
  static constexpr int kHeaderBytes = 1024;  // b2 at 0 (TN values), barriers from kBarriersAt
  static constexpr int kBarriersAt = 512;
  static constexpr int kSmemBudget = 226 * 1024;
  static_assert(TN * 2 <= kBarriersAt && kBarriersAt + (1 + 2 * kMaxStages) * 8 <= kHeaderBytes, "header");
};

// Shared memory after the header, from a 1024-byte boundary (the swizzle
// period): the input rows [kboxes][kTileM][64], then the ring of `stages`
// slots, each w1's step [kboxes][64][64] and w2's [kW2Atoms][64][64]. The
// epilogue's fp32 rows reuse both.
template <class Tr>
struct Layout {
  int kboxes, x_bytes, stage_bytes, stages, bytes;
  __host__ __device__ explicit Layout(int cin) {
    kboxes = (cin + 63) / 64;
    x_bytes = kboxes * Tr::kXBoxBytes;
    stage_bytes = (kboxes + Tr::kW2Atoms) * Tr::kAtomBytes;
    const int fit = (Tr::kSmemBudget - Tr::kHeaderBytes - 1024 - x_bytes) / stage_bytes;
    stages = fit < Tr::kMaxStages ? fit : Tr::kMaxStages;
    const int body = x_bytes + stages * stage_bytes, scratch = Tr::kTileM * Tr::kScratchLd * 4;
    bytes = Tr::kHeaderBytes + (body > scratch ? body : scratch) + 1024;  // + slack for the alignment
  }
};

// ConvNeXt's LayerNorm of this warpgroup's 64 rows of x in shared memory, in
// place: two threads per row, each on four 16-byte chunks of every
// 64-channel box (rotated by the row, so a quarter warp's rows hit
// different banks); mean and variance in fp32 (two passes over the resident
// row), the normalized values rounded to T as the LayerNorm's output is.
// Cin is a multiple of 8, so a chunk is all channels or all padding (the
// copy engine's zeros, left as they are).
// Not inlined: inlined, its divergent loops made ptxas serialize the
// kernel's wgmmas (C7520); a call once per block costs nothing.
template <class Tr, typename T = typename Tr::T>
__device__ __noinline__ void layer_norm_rows(unsigned char* x_s, int kboxes, int cin, const T* scale, const T* shift,
                                             float eps) {
  const int i = threadIdx.x % 128, row = threadIdx.x / 128 * 64 + i / 2, half = i % 2;
  auto position = [&](int j) { return 4 * half + (j + row) % 4; };
  // The 128-byte swizzle stores a row's chunk c at position c ^ (row % 8).
  auto channel = [&](int kb, int j) { return 64 * kb + 8 * (position(j) ^ (row % 8)); };
  auto chunk = [&](int kb, int j) {
    return reinterpret_cast<T*>(x_s + kb * Tr::kXBoxBytes + row * 128 + 16 * position(j));
  };
  float sum = 0.f;
  for (int kb = 0; kb < kboxes; ++kb)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float v[8];
      Elem<T>::load8(chunk(kb, j), v);
#pragma unroll
      for (int e = 0; e < 8; ++e) sum += v[e];
    }
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  const float mean = sum / float(cin);
  float squares = 0.f;
  for (int kb = 0; kb < kboxes; ++kb)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (channel(kb, j) >= cin) continue;
      float v[8];
      Elem<T>::load8(chunk(kb, j), v);
#pragma unroll
      for (int e = 0; e < 8; ++e) squares += (v[e] - mean) * (v[e] - mean);
    }
  squares += __shfl_xor_sync(0xffffffffu, squares, 1);
  const float rstd = rsqrtf(squares / float(cin) + eps);
  for (int kb = 0; kb < kboxes; ++kb)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int c = channel(kb, j);
      if (c >= cin) continue;
      float v[8], g[8], s[8];
      T* const p = chunk(kb, j);
      Elem<T>::load8(p, v);
      Elem<T>::load8(scale + c, g);
      Elem<T>::load8(shift + c, s);
#pragma unroll
      for (int e = 0; e < 8; ++e) v[e] = (v[e] - mean) * rstd * g[e] + s[e];
      *reinterpret_cast<uint4*>(p) = make_uint4(Elem<T>::pack2(v[0], v[1]), Elem<T>::pack2(v[2], v[3]),
                                                Elem<T>::pack2(v[4], v[5]), Elem<T>::pack2(v[6], v[7]));
    }
}

template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, 1)
    pw_pw_wgmma_kernel(const __grid_constant__ CUtensorMap x_map, const __grid_constant__ CUtensorMap w1_map,
                       const __grid_constant__ CUtensorMap w2_map, const PwPwShape s, const PwPwPointers p,
                       const int act1, const int act2) {
#if FCM_WGMMA_AVAILABLE
  using T = typename Tr::T;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* const header = smem_raw + (1024 - shared_address(smem_raw) % 1024) % 1024;
  const Layout<Tr> L(int(s.cin));
  T* const bias_s = reinterpret_cast<T*>(header);
  uint64_t* const x_full = reinterpret_cast<uint64_t*>(header + Tr::kBarriersAt);
  uint64_t* const full = x_full + 1;
  uint64_t* const empty = full + L.stages;
  unsigned char* const x_s = header + Tr::kHeaderBytes;
  unsigned char* const ring = x_s + L.x_bytes;
  const int64_t m0 = int64_t(blockIdx.x) * Tr::kTileM;
  const int rows = s.m - m0 < Tr::kTileM ? int(s.m - m0) : Tr::kTileM;
  const int hidden = int(s.hidden), cout = int(s.cout), co0 = int(blockIdx.y) * Tr::TN;
  const int steps = (hidden + Tr::kHC - 1) / Tr::kHC;
  const int lane = threadIdx.x % 32;
  if (threadIdx.x == 0) {
    mbarrier_init(x_full, 1);
    for (int i = 0; i < L.stages; ++i) {
      mbarrier_init(full + i, 1);                   // thread 0's arrive (+ the copies' bytes)
      mbarrier_init(empty + i, Tr::kThreads / 32);  // one arrive per warp
    }
    mbarrier_init_fence();
  }
  const T* const b2 = static_cast<const T*>(p.b2);
  // (kBlock: b2 goes in before the layer scale, in the epilogue's finish.)
  for (int c = threadIdx.x; c < Tr::TN; c += Tr::kThreads)
    bias_s[c] = co0 + c < cout && !Tr::kBlock ? b2[co0 + c] : Elem<T>::from_float(0.f);
  __syncthreads();

  // Thread 0 loads step g's slot (once every warp released its previous use).
  auto load_step = [&](int g) {
    const int slot = g % L.stages;
    mbarrier_wait(empty + slot, (g / L.stages & 1) ^ 1);
    mbarrier_arrive_expect_tx(full + slot, L.stage_bytes);
    unsigned char* const stage = ring + slot * L.stage_bytes;
    for (int kb = 0; kb < L.kboxes; ++kb)
      tma_load_2d(stage + kb * Tr::kAtomBytes, &w1_map, g * Tr::kHC, 64 * kb, full + slot);
#pragma unroll
    for (int a = 0; a < Tr::kW2Atoms; ++a)
      tma_load_2d(stage + (L.kboxes + a) * Tr::kAtomBytes, &w2_map, co0 + 64 * a, g * Tr::kHC, full + slot);
  };
  if (threadIdx.x == 0) {
    mbarrier_arrive_expect_tx(x_full, L.x_bytes);
    for (int kb = 0; kb < L.kboxes; ++kb) tma_load_2d(x_s + kb * Tr::kXBoxBytes, &x_map, 64 * kb, int(m0), x_full);
    for (int g = 0; g < steps && g < L.stages; ++g) load_step(g);
  }

  const int warpgroup = threadIdx.x / 128, t = lane % 4;
  if constexpr (Tr::kBlock) {
    mbarrier_wait(x_full, 0);
    layer_norm_rows<Tr>(x_s, L.kboxes, int(s.cin), static_cast<const T*>(p.block.ln_scale),
                        static_cast<const T*>(p.block.ln_bias), p.block.eps);
    fence_proxy_async_shared();  // the normalized rows are read by wgmma (async proxy)
    asm volatile("bar.sync %0, 128;\n" ::"r"(1 + warpgroup) : "memory");  // this warpgroup's rows are done
  }
  const T* const b1 = static_cast<const T*>(p.b1);
  float y[Tr::TN / 2];
#pragma unroll
  for (int i = 0; i < Tr::TN / 2; ++i) y[i] = 0.f;
  wgmma_fence_operands(y);
  mbarrier_wait(x_full, 0);
  const uint32_t x_rows = shared_address(x_s) + warpgroup * 64 * 128;
  float h[32];
  uint32_t a[4][4];
  for (int g = 0; g < steps; ++g) {
    const int slot = g % L.stages;
    mbarrier_wait(full + slot, g / L.stages & 1);  // the copies landed (async proxy: no fence needed)
    const uint32_t w1_step = shared_address(ring + slot * L.stage_bytes);
    const uint32_t w2_step = w1_step + L.kboxes * Tr::kAtomBytes;
    // 1. h = x rows . w1 columns (4 k16 wgmmas per 64-channel box of x; the
    // first overwrites h), queued behind step g - 1's second GEMM.
    wgmma_fence();
    for (int kb = 0; kb < L.kboxes; ++kb)
#pragma unroll
      for (int k = 0; k < 4; ++k)
        Wgmma<T, 64>::run(h, wgmma_descriptor(x_rows + kb * Tr::kXBoxBytes + k * 32, 16, 1024),
                          wgmma_descriptor(w1_step + (4 * kb + k) * 2048, Tr::kAtomBytes, 1024), kb + k > 0);
    wgmma_commit();
    wgmma_wait<0>();
    wgmma_fence_operands(h);
    // Step g - 1's slot is read (its second GEMM ran): release it, and
    // thread 0 refills it with step g - 1 + stages.
    if (g > 0) {
      if (lane == 0) mbarrier_arrive(empty + (g - 1) % L.stages);
      if (threadIdx.x == 0 && g - 1 + L.stages < steps) load_step(g - 1 + L.stages);
    }
    // 2. + b1, act1, packed: lane (g, t) of each warp holds, per 8-column
    // group j, columns 8j + 2t and 8j + 2t + 1 of rows g and g + 8; k16
    // step k of the second GEMM takes column groups 2k and 2k + 1.
    const int h0 = g * Tr::kHC;
    with_activation(act1, [&](auto kind) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int col = h0 + 8 * j + 2 * t;
        const float b_lo = col < hidden ? Elem<T>::to_float(b1[col]) : 0.f;
        const float b_hi = col + 1 < hidden ? Elem<T>::to_float(b1[col + 1]) : 0.f;
        h[4 * j] = apply_activation(h[4 * j] + b_lo, kind.value);
        h[4 * j + 1] = apply_activation(h[4 * j + 1] + b_hi, kind.value);
        h[4 * j + 2] = apply_activation(h[4 * j + 2] + b_lo, kind.value);
        h[4 * j + 3] = apply_activation(h[4 * j + 3] + b_hi, kind.value);
      }
    });
#pragma unroll
    for (int k = 0; k < 4; ++k)
#pragma unroll
      for (int r = 0; r < 4; ++r) a[k][r] = Elem<T>::pack2(h[8 * k + 2 * r], h[8 * k + 2 * r + 1]);
    // 3. y += h . w2 rows, left running.
    wgmma_fence();
#pragma unroll
    for (int k = 0; k < 4; ++k)
      WgmmaRs<T, Tr::TN>::run(y, a[k], wgmma_descriptor(w2_step + k * 2048, Tr::kAtomBytes, 1024));
    wgmma_commit();
  }
  wgmma_wait<0>();
  wgmma_fence_operands(y);
  // Every copy has landed and every wgmma has run; once all warps are here
  // the input rows and the ring become the epilogue's scratch.
  __syncthreads();
  T* const y_tile = static_cast<T*>(p.y) + m0 * cout;
  const auto sync = [] { __syncthreads(); };
  if constexpr (Tr::kBlock) {
    // y = residual + layer_scale * (h . w2 + b2); Cout is a multiple of 8,
    // so a group's 8 channels are all in range (16-byte loads).
    const T* const residual = static_cast<const T*>(p.block.residual) + m0 * cout;
    const T* const layer_scale = static_cast<const T*>(p.block.layer_scale);
    wgmma_store_tile<Tr::TN, Tr::kTileM, Tr::kThreads>(
        y, reinterpret_cast<float*>(x_s), sync, y_tile, bias_s, rows, co0, cout, act2,
        [&](int row, int col, float(&v)[8]) {
          float r[8], g[8], b[8];
          Elem<T>::load8(residual + int64_t(row) * cout + co0 + col, r);
          Elem<T>::load8(layer_scale + co0 + col, g);
          Elem<T>::load8(b2 + co0 + col, b);
#pragma unroll
          for (int e = 0; e < 8; ++e) v[e] = r[e] + g[e] * (v[e] + b[e]);
        });
  } else {
    wgmma_store_tile<Tr::TN, Tr::kTileM, Tr::kThreads>(y, reinterpret_cast<float*>(x_s), sync, y_tile, bias_s, rows,
                                                       co0, cout, act2);
  }
#endif
}

}  // namespace pw_pw_wgmma_detail

namespace pw_pw_wgmma_detail {

template <class Tr>
cudaError_t launch(const PwPwShape& s, const PwPwPointers& p, int act1, int act2, cudaStream_t stream) {
  using T = typename Tr::T;
  constexpr int TN = Tr::TN;
  constexpr auto kernel = pw_pw_wgmma_kernel<Tr>;
  if (s.m == 0) return cudaSuccess;
  if (!pw_pw_wgmma_operands_ok(s, p)) return cudaErrorInvalidValue;
  const int64_t m_tiles = (s.m + Tr::kTileM - 1) / Tr::kTileM, co_tiles = (s.cout + TN - 1) / TN;
  if (m_tiles > INT_MAX || co_tiles > 65535 || s.m > INT_MAX) return cudaErrorInvalidConfiguration;
  CUtensorMap x_map, w1_map, w2_map;
  if (!make_tensor_map_2d<T>(&x_map, p.x, uint64_t(s.m), uint64_t(s.cin), Tr::kTileM, 64) ||
      !make_tensor_map_2d<T>(&w1_map, p.w1, uint64_t(s.cin), uint64_t(s.hidden), 64, 64) ||
      !make_tensor_map_2d<T>(&w2_map, p.w2, uint64_t(s.hidden), uint64_t(s.cout), 64, 64))
    return cudaErrorNotSupported;
  const Layout<Tr> layout(int(s.cin));
  if (layout.stages < 2) return cudaErrorInvalidValue;
  if (cudaError_t err = allow_dynamic_smem<kernel>(layout.bytes); err != cudaSuccess) return err;
  kernel<<<dim3(unsigned(m_tiles), unsigned(co_tiles)), Tr::kThreads, layout.bytes, stream>>>(x_map, w1_map, w2_map,
                                                                                               s, p, act1, act2);
  return cudaGetLastError();
}

}  // namespace pw_pw_wgmma_detail

template <typename T, int TN>
cudaError_t launch_pw_pw_wgmma(const PwPwShape& s, const PwPwPointers& p, int act1, int act2, cudaStream_t stream) {
  using namespace pw_pw_wgmma_detail;
  if constexpr (TN == 192) {  // only ConvNeXt's blocks take the 192-wide tile (pw_pw_wgmma_tile_n)
    return p.block.active() ? launch<Traits<T, TN, true>>(s, p, act1, act2, stream) : cudaErrorInvalidValue;
  } else {
    return p.block.active() ? launch<Traits<T, TN, true>>(s, p, act1, act2, stream)
                            : launch<Traits<T, TN, false>>(s, p, act1, act2, stream);
  }
}

}  // namespace jax_fcm

#define FCM_INSTANTIATE_PW_PW_WGMMA_ONE(T, TN)                                                                  \
  template cudaError_t jax_fcm::launch_pw_pw_wgmma<T, TN>(const jax_fcm::PwPwShape&, const jax_fcm::PwPwPointers&, \
                                                          int, int, cudaStream_t);
#define FCM_INSTANTIATE_PW_PW_WGMMA(T)    \
  FCM_INSTANTIATE_PW_PW_WGMMA_ONE(T, 64)  \
  FCM_INSTANTIATE_PW_PW_WGMMA_ONE(T, 96)  \
  FCM_INSTANTIATE_PW_PW_WGMMA_ONE(T, 128) \
  FCM_INSTANTIATE_PW_PW_WGMMA_ONE(T, 192)
