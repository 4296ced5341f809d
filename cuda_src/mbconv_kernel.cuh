// Fused inverted-residual (MBConv) block, NHWC: 1x1 expand -> bias ->
// activation -> k x k depthwise -> bias -> activation -> 1x1 project -> bias
// (+ x). One kernel template per element type, PW math, kernel size, stride and
// projection tile (FCM_INSTANTIATE_MBCONV); the expanded tensor never leaves
// the SM.
//
// A block owns an 8x8 tile of output pixels and TN output channels. It stages
// x's input window (the tile's receptive field, all Cin channels) once, then
// walks the expanded channels in chunks of 32:
//   1. expansion: window pixels x Cin times the chunk's expansion columns on
//      tensor cores (FFMA at full fp32), + bias, activation, zeros outside the
//      image (the depthwise conv's padding) -> the chunk's window in shared memory;
//   2. depthwise conv of that window -> the A tile (the DW->PW kernel's stage);
//   3. A x the chunk's projection rows, accumulated in fp32 registers.
// Without the projection (Project = false: jax_fcm.pw_dw, PW -> DW) step 3 is
// a store of the depthwise result, and blockIdx.y picks a group of chunks
// (the block's output channels) instead of an output-channel tile.
// The weights of chunk i + 1 are copied (cp.async) while chunk i computes. The
// window's pixels around the tile are expanded by every block that needs them
// (the halo is recomputed, not exchanged): at stride 1 and 3x3, 100 window
// pixels per 64 outputs.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "async_copy.cuh"
#include "cluster_launch.cuh"
#include "cluster_reduce.cuh"
#include "dw_pw_depthwise.cuh"
#include "dw_pw_launch.h"
#include "dw_pw_pointwise.cuh"
#include "dw_pw_stage.cuh"
#include "dynamic_smem.cuh"
#include "mbconv_launch.h"
#include "mbconv_traits.cuh"

namespace jax_fcm {
namespace mbconv_detail {

using dw_pw_detail::clamp_valid;
using dw_pw_detail::copy16;
using dw_pw_detail::epilogue_col;
using dw_pw_detail::epilogue_row;
using dw_pw_detail::PwAccumulator;
using dw_pw_detail::with_vec;

// x's input window of the tile (rows of kMTiles * 16 pixels, window pixels
// first) with Cin channels, zeros outside the image and past Cin.
template <class Tr>
__device__ __forceinline__ void stage_window(typename Tr::T* x_s, const typename Tr::T* __restrict__ image,
                                             const DwPwShape& s, int cin, int iy0, int ix0, bool vec) {
  using Ex = ExpandView<Tr>;
  constexpr int V = Tr::kVec, kRows = Ex::kMTiles * 16;
  const int per_pixel = padded_cin(cin) / V, ld = x_row_stride<Tr>(cin), h = int(s.h), w = int(s.w);
  // Copy i = threadIdx.x + k * kThreads is (pixel p, vector v); one division
  // here, then a step with carry (a division per copy was a large share of
  // the integer work of a block with few chunks).
  const int step_p = Tr::kThreads / per_pixel, step_v = Tr::kThreads - step_p * per_pixel;
  with_vec(vec, [&](auto vec_c) {
    int p = int(threadIdx.x) / per_pixel, v = int(threadIdx.x) - p * per_pixel;
    for (; p < kRows; p += step_p, v += step_v) {
      if (v >= per_pixel) v -= per_pixel, ++p;
      if (p >= kRows) break;
      const int gy = iy0 + p / Tr::kInW, gx = ix0 + p % Tr::kInW, cv = v * V;
      const bool inside = p < Ex::kWindowPixels && gy >= 0 && gy < h && gx >= 0 && gx < w;
      const int valid = inside ? clamp_valid(cin - cv, V) : 0;
      copy16<vec_c.value>(x_s + p * ld + cv, valid > 0 ? image + (gy * w + gx) * cin + cv : image, valid);
    }
  });
}

// After the window landed: the ones channel (channel Cin, inside the image),
// and for TF32 tensor cores, which read the low mantissa bits as they are, x
// rounded once (as the depthwise stage rounds its A tile, and as XLA's TF32
// convolutions do).
template <class Tr>
__device__ __forceinline__ void finish_window(typename Tr::T* x_s, const DwPwShape& s, int cin, int iy0, int ix0) {
  using T = typename Tr::T;
  using Ex = ExpandView<Tr>;
  const int ld = x_row_stride<Tr>(cin);
  if constexpr (Tr::kTf32) {
    const int n = Ex::kMTiles * 16 * ld;
    for (int i = int(threadIdx.x); i < n; i += Tr::kThreads) x_s[i] = __uint_as_float(tf32_bits(x_s[i]));
    __syncthreads();  // the ones below must not race the rounding of their zeros
  }
  for (int p = int(threadIdx.x); p < Ex::kWindowPixels; p += Tr::kThreads) {
    const int gy = iy0 + p / Tr::kInW, gx = ix0 + p % Tr::kInW;
    if (gy >= 0 && gy < s.h && gx >= 0 && gx < s.w) x_s[p * ld + cin] = Elem<T>::from_float(1.f);
  }
}

// Rows Cin + 1 .. of the expansion columns: never staged (zeros meet the
// ones channel's padding), but they must not hold stale NaNs.
template <class Tr>
__device__ __forceinline__ void zero_expand_padding(typename Tr::T* expand_s, int stage, int cin) {
  using Ex = ExpandView<Tr>;
  const int first = (cin + 1) * Ex::kLdB, count = padded_cin(cin) * Ex::kLdB - first;
  for (int i = int(threadIdx.x); i < 2 * count; i += Tr::kThreads)
    expand_s[(i / count) * stage + first + i % count] = Elem<typename Tr::T>::from_float(0.f);
}

// Two neighbouring values of T into shared memory (4 bytes for 16-bit types).
template <typename T>
__device__ __forceinline__ void store_pair(T* dst, float v0, float v1) {
  if constexpr (sizeof(T) == 4) {
    *reinterpret_cast<float2*>(dst) = make_float2(v0, v1);
  } else {
    *reinterpret_cast<uint32_t*>(dst) = Elem<T>::pack2(v0, v1);
  }
}

// Step 1 for channels c0 .. c0 + KC: the expanded window, [window pixel][kInPix].
// The GEMM already added the bias (ones channel) and left zeros outside the
// image and past Cmid (zero-filled columns), which every activation keeps;
// the epilogue works on the accumulator fragments in place.
template <class Tr>
__device__ __forceinline__ void expand_chunk(const typename Tr::T* x_s, const typename Tr::T* expand_s,
                                             typename Tr::T* mid_s, int cin, int act) {
  using T = typename Tr::T;
  using Ex = ExpandView<Tr>;
  const int cin16 = padded_cin(cin), ld = x_row_stride<Tr>(cin);
  const int warp = int(threadIdx.x) / 32;
  with_activation(act, [&](auto kind) {
    for (int mt = warp; mt < Ex::kMTiles; mt += Tr::kWarps) {
      PwAccumulator<Ex> acc;
      acc.zero();
      const T* rows = x_s + mt * 16 * ld;
      for (int k0 = 0; k0 < cin16; k0 += Ex::KC) acc.accumulate(rows + k0, expand_s + k0 * Ex::kLdB, 0, 0, ld);
      acc.pairs([&](int row, int col, float v0, float v1) {
        const int p = mt * 16 + row;
        if (Ex::kWindowPixels % 16 != 0 && p >= Ex::kWindowPixels) return;  // the padded GEMM rows
        store_pair(mid_s + p * Tr::kInPix + col, apply_activation(v0, kind.value), apply_activation(v1, kind.value));
      });
    }
  });
}

// 8 residual values x[pixel, co .. co + 8) added to v.
template <typename T>
__device__ __forceinline__ void add_residual(float (&v)[8], const T* __restrict__ x_pixel, int64_t co, int64_t cin,
                                             bool vec) {
  if (vec) {  // co is a multiple of 8, rows 16-byte aligned
    float r[8];
    if constexpr (sizeof(T) == 4) {
      const float4 lo = __ldg(reinterpret_cast<const float4*>(x_pixel + co));
      const float4 hi = __ldg(reinterpret_cast<const float4*>(x_pixel + co + 4));
      r[0] = lo.x, r[1] = lo.y, r[2] = lo.z, r[3] = lo.w, r[4] = hi.x, r[5] = hi.y, r[6] = hi.z, r[7] = hi.w;
    } else {
      const uint4 raw = __ldg(reinterpret_cast<const uint4*>(x_pixel + co));
      const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const T* pair = reinterpret_cast<const T*>(&words[e]);
        r[2 * e] = Elem<T>::to_float(pair[0]), r[2 * e + 1] = Elem<T>::to_float(pair[1]);
      }
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) v[e] += r[e];
  } else {
#pragma unroll
    for (int e = 0; e < 8; ++e)
      if (co + e < cin) v[e] += Elem<T>::to_float(x_pixel[co + e]);
  }
}

template <class Tr, bool Project>
__global__ void __launch_bounds__(Tr::kThreads, min_blocks<Tr>())
    mbconv_kernel(const MbconvShape ms, const MbconvEpilogue epi, const MbconvPointers p, const MbconvRun run) {
  using T = typename Tr::T;
  extern __shared__ __align__(16) unsigned char smem[];
  const DwPwShape& s = ms.inner;
  const int cin = int(ms.cin);
  const SmemPlan plan = make_smem_plan<Tr>(cin, run.splits, Project);
  T* const x_s = reinterpret_cast<T*>(smem);
  T* const mid_s = reinterpret_cast<T*>(smem + plan.off_mid);
  T* const taps_s = reinterpret_cast<T*>(smem + plan.off_taps);
  T* const expand_s = reinterpret_cast<T*>(smem + plan.off_expand);
  T* const project_s = reinterpret_cast<T*>(smem + plan.off_project);
  T* const a_s = reinterpret_cast<T*>(smem + plan.off_a);
  constexpr int kTapsStage = Tr::kTapsStageBytes / sizeof(T), kProjectStage = Tr::kWStageBytes / sizeof(T);
  const int expand_stage = (plan.off_project - plan.off_expand) / 2 / int(sizeof(T));

  const int tiles_w = int((s.wo + Tr::TW - 1) / Tr::TW), tiles_h = int((s.ho + Tr::TH - 1) / Tr::TH);
  // The block's share of the chunks: its rank in its cluster (mbconv), or its
  // chunk group (pw_dw).
  const int parts = Project ? run.splits : int(gridDim.y);
  const int rank = Project ? int(blockIdx.x) % run.splits : int(blockIdx.y);
  const int tile = Project ? int(blockIdx.x) / run.splits : int(blockIdx.x), image_tile = tile % (tiles_h * tiles_w);
  const int64_t n = tile / (tiles_h * tiles_w);
  const int oy0 = image_tile / tiles_w * Tr::TH, ox0 = image_tile % tiles_w * Tr::TW;
  const int iy0 = oy0 * Tr::S - int(s.pad_top), ix0 = ox0 * Tr::S - int(s.pad_left);
  const int co0 = Project ? int(blockIdx.y) * Tr::TN : 0;
  // This block's chunks of the expanded channels (all of them without splits).
  const int all_chunks = int((s.c + Tr::KC - 1) / Tr::KC);
  const int chunk0 = rank * all_chunks / parts, nchunks = (rank + 1) * all_chunks / parts - chunk0;
  const dw_pw_detail::StageDims dims(s);  // c = Cmid, cout = Cout
  const T* x_image = static_cast<const T*>(p.x) + n * s.h * s.w * cin;

  auto stage_chunk = [&](int chunk, int buf) {
    const int c0 = chunk * Tr::KC;
    dw_pw_detail::stage_taps<Tr>(taps_s + buf * kTapsStage, static_cast<const T*>(p.dw_kernel),
                                 static_cast<const T*>(p.dw_bias), dims, c0, run.vec_mid);
    dw_pw_detail::stage_matrix<Tr, Tr::KC, ExpandView<Tr>::kLdB>(
        expand_s + buf * expand_stage, static_cast<const T*>(p.expand_kernel), static_cast<const T*>(p.expand_bias),
        cin, 0, cin, c0, dims.c, run.vec_mid);  // rows 0 .. Cin - 1, then the bias as row Cin
    if constexpr (Project)
      dw_pw_detail::stage_weights<Tr>(project_s + buf * kProjectStage, static_cast<const T*>(p.project_kernel),
                                      static_cast<const T*>(p.project_bias), dims, c0, co0, run.vec_project);
  };
  stage_window<Tr>(x_s, x_image, s, cin, iy0, ix0, run.vec_x);
  stage_chunk(chunk0, 0);
  cp_async_commit();
  zero_expand_padding<Tr>(expand_s, expand_stage, cin);

  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int wm = warp % Tr::kWarpsM, wn = warp / Tr::kWarpsM;
  float* const scratch = reinterpret_cast<float*>(smem + plan.off_scratch) + warp * 16 * Tr::kScratchLd;
  PwAccumulator<Tr> acc;
  acc.zero();
  for (int i = 0; i < nchunks; ++i) {
    const int buf = i & 1, c0 = (chunk0 + i) * Tr::KC;
    // Chunk `chunk` has landed for this thread; the barrier makes it visible
    // and means every warp is done with chunk - 1, whose buffers the next
    // copies overwrite.
    cp_async_wait<0>();
    __syncthreads();
    if (i == 0) {
      finish_window<Tr>(x_s, s, cin, iy0, ix0);
      __syncthreads();
    }
    if (i + 1 < nchunks) stage_chunk(chunk0 + i + 1, buf ^ 1);
    cp_async_commit();
    expand_chunk<Tr>(x_s, expand_s + buf * expand_stage, mid_s, cin, epi.expand_activation);
    __syncthreads();
    // pw_dw's depthwise result is its output: not rounded for TF32.
    dw_pw_detail::depthwise_chunk<Tr, Project && Tr::kTf32>(mid_s, taps_s + buf * kTapsStage, a_s, s, c0,
                                                            epi.dw_activation);
    __syncthreads();
    if constexpr (Project) {
      acc.accumulate(a_s, project_s + buf * kProjectStage, wm, wn);
    } else {  // the next chunk's depthwise stage writes a_s after the loop's first barrier
      dw_pw_detail::store_a_tile<Tr>(a_s, static_cast<T*>(p.y) + n * s.ho * s.wo * s.c, int(s.ho), int(s.wo),
                                     dims.c, oy0, ox0, c0, run.vec_y);
    }
  }
  if constexpr (!Project) return;

  // Epilogue: projection bias (linear), residual, store.
  const T* bias_s = project_s + ((nchunks - 1) & 1) * kProjectStage + Tr::KC * Tr::kLdB;
  T* const y_image = static_cast<T*>(p.y) + n * s.ho * s.wo * s.cout;
  auto store = [&](int pix, int col, float(&v)[8]) {  // one pixel's 8 channels co0 + col ..
    const int64_t oy = oy0 + pix / Tr::TW, ox = ox0 + pix % Tr::TW, co = co0 + col;
    if (epi.residual) add_residual(v, x_image + (oy * s.w + ox) * cin, co, s.cout, run.vec_y);  // stride 1: same pixel
    dw_pw_detail::store_outputs<kActNone>(y_image + (oy * s.wo + ox) * s.cout + co, bias_s + col, v, co, s.cout,
                                          run.vec_y);
  };
  auto in_range = [&](int pix, int col) {
    return oy0 + pix / Tr::TW < s.ho && ox0 + pix % Tr::TW < s.wo && co0 + col < s.cout;
  };
  if (run.splits > 1) {
    dw_pw_detail::cluster_reduce<Tr>(acc, scratch, reinterpret_cast<float*>(smem + plan.off_partial), run.splits,
                                     rank, in_range, store);
    return;
  }
#pragma unroll
  for (int j = 0; j < Tr::kFragsN; ++j) {
    float v[8];
    acc.read(j, scratch, v);  // warp-wide: every lane takes part
    const int pix = wm * 16 + epilogue_row(lane), col = wn * Tr::kWarpN + j * 16 + epilogue_col(lane);
    if (in_range(pix, col)) store(pix, col, v);
  }
}

}  // namespace mbconv_detail

template <typename T, int Math, int K, int S, int TN>
cudaError_t launch_mbconv(const MbconvShape& ms, const MbconvEpilogue& epi, const MbconvPointers& p, int splits,
                          cudaStream_t stream) {
  using Tr = mbconv_detail::Traits<T, Math, K, S, TN>;
  constexpr auto kernel = mbconv_detail::mbconv_kernel<Tr, /*Project=*/true>;
  const DwPwShape& s = ms.inner;
  const int64_t tiles = s.n * ((s.ho + Tr::TH - 1) / Tr::TH) * ((s.wo + Tr::TW - 1) / Tr::TW);
  const int64_t co_tiles = (s.cout + TN - 1) / TN;
  if (tiles <= 0 || co_tiles <= 0) return cudaSuccess;  // empty output
  DeviceLimits limits;
  if (cudaError_t err = device_limits(&limits); err != cudaSuccess) return err;
  // Channel splits: a cluster of 2, 4 or 8 blocks (sm_90+), each with at least one chunk.
  if ((splits != 2 && splits != 4 && splits != 8) || !limits.clusters || splits > (s.c + Tr::KC - 1) / Tr::KC)
    splits = 1;
  if (tiles * splits > INT_MAX || co_tiles > 65535) return cudaErrorInvalidConfiguration;
  const int bytes = mbconv_detail::make_smem_plan<Tr>(int(ms.cin), splits).bytes;
  if (bytes > limits.max_dynamic_smem) return cudaErrorInvalidConfiguration;
  if (cudaError_t err = allow_dynamic_smem<kernel>(bytes); err != cudaSuccess) return err;

  constexpr int V = Tr::kVec;
  using dw_pw_detail::aligned16;
  mbconv_detail::MbconvRun run{};
  run.splits = splits;
  run.vec_x = ms.cin % V == 0 && aligned16(p.x);
  run.vec_mid = s.c % V == 0 && aligned16(p.expand_kernel) && aligned16(p.expand_bias) && aligned16(p.dw_kernel) &&
                aligned16(p.dw_bias);
  run.vec_project = s.cout % V == 0 && aligned16(p.project_kernel) && aligned16(p.project_bias);
  run.vec_y = s.cout % 8 == 0 && aligned16(p.y) && aligned16(p.x);
  return launch_clustered(kernel, dim3(unsigned(tiles * splits), unsigned(co_tiles)), Tr::kThreads, bytes, splits,
                          stream, ms, epi, p, run);
}

template <typename T, int Math, int K, int S>
cudaError_t launch_pw_dw(const MbconvShape& ms, const MbconvEpilogue& epi, const MbconvPointers& p,
                         cudaStream_t stream) {
  using Tr = mbconv_detail::Traits<T, Math, K, S, kPwDwTileN>;
  constexpr auto kernel = mbconv_detail::mbconv_kernel<Tr, /*Project=*/false>;
  const DwPwShape& s = ms.inner;
  const int64_t tiles = s.n * ((s.ho + Tr::TH - 1) / Tr::TH) * ((s.wo + Tr::TW - 1) / Tr::TW);
  const int64_t chunks = (s.c + Tr::KC - 1) / Tr::KC;
  if (tiles <= 0 || chunks <= 0) return cudaSuccess;  // empty output
  DeviceLimits limits;
  if (cudaError_t err = device_limits(&limits); err != cudaSuccess) return err;
  // Chunk groups per pixel tile: enough blocks for about four per SM. A group
  // restages the tile's x window (an L2 read of Cin channels); no expansion
  // is repeated, each chunk is expanded by one block.
  const int64_t wanted = (4 * int64_t(limits.sm_count) + tiles - 1) / tiles;
  const int64_t groups = wanted < chunks ? wanted : chunks;
  if (tiles > INT_MAX || groups > 65535) return cudaErrorInvalidConfiguration;
  const int bytes = mbconv_detail::make_smem_plan<Tr>(int(ms.cin), 1, false).bytes;
  if (bytes > limits.max_dynamic_smem) return cudaErrorInvalidConfiguration;
  if (cudaError_t err = allow_dynamic_smem<kernel>(bytes); err != cudaSuccess) return err;

  using dw_pw_detail::aligned16;
  mbconv_detail::MbconvRun run{};
  run.splits = 1;
  run.vec_x = ms.cin % Tr::kVec == 0 && aligned16(p.x);
  run.vec_mid = s.c % Tr::kVec == 0 && aligned16(p.expand_kernel) && aligned16(p.expand_bias) &&
                aligned16(p.dw_kernel) && aligned16(p.dw_bias);
  run.vec_project = false;
  run.vec_y = s.c % Tr::kVec == 0 && aligned16(p.y);
  return launch_clustered(kernel, dim3(unsigned(tiles), unsigned(groups)), Tr::kThreads, bytes, 1, stream, ms, epi, p,
                          run);
}

}  // namespace jax_fcm

// Explicit instantiations for one element type, PW math, kernel size and
// stride: every projection tile in kMbconvTileNs.
#define FCM_INSTANTIATE_MBCONV_ONE(T, MATH, K, S, TN)                                                        \
  template cudaError_t jax_fcm::launch_mbconv<T, MATH, K, S, TN>(                                              \
      const jax_fcm::MbconvShape&, const jax_fcm::MbconvEpilogue&, const jax_fcm::MbconvPointers&, int, cudaStream_t);
#define FCM_INSTANTIATE_MBCONV(T, MATH, K, S)     \
  FCM_INSTANTIATE_MBCONV_ONE(T, MATH, K, S, 32)  \
  FCM_INSTANTIATE_MBCONV_ONE(T, MATH, K, S, 64)  \
  FCM_INSTANTIATE_MBCONV_ONE(T, MATH, K, S, 96)  \
  FCM_INSTANTIATE_MBCONV_ONE(T, MATH, K, S, 128) \
  FCM_INSTANTIATE_MBCONV_ONE(T, MATH, K, S, 160)
// pw_dw (no projection) for one element type, PW math, kernel size and stride.
#define FCM_INSTANTIATE_PW_DW(T, MATH, K, S)                                                                     \
  template cudaError_t jax_fcm::launch_pw_dw<T, MATH, K, S>(const jax_fcm::MbconvShape&,                       \
                                                            const jax_fcm::MbconvEpilogue&,                     \
                                                            const jax_fcm::MbconvPointers&, cudaStream_t);
