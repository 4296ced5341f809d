// Backward of a k x k depthwise convolution, NHWC, in one pass over its
// operands: the input gradient dx (a transposed depthwise convolution of dy)
// and the weight and bias gradients (sums over pixels of x-window * dy and of
// dy). XLA runs these as two cuDNN calls that each read dy, and for some
// shapes picks grouped-direct or FFT algorithms that are 10-40x slower.
//
// A block owns 32 channels (one per lane) of one image and walks that image's
// 8 x 8 output tiles (group g takes tiles g, g + groups, ...). Per tile it
// stages, as fp32 in shared memory,
//   - dy over the tile plus the halo its dx pixels read, and
//   - x over the receptive field of the tile's outputs,
// then each warp
//   1. adds one output row's x-window * dy products into fp32 registers
//      (the weight gradient, kept across tiles), and
//   2. writes dx for input rows warp, warp + 8, ... of the tile's region.
// Every output pixel belongs to exactly one tile (weight gradient) and every
// input pixel to exactly one tile's dx region: rows [oy0 * S, oy1 * S), and up
// to H at the image's last tile row (pixels no output window starts at).
// Padding must be at most k - 1 on every side (the callers check), so a
// tile's own outputs lie inside its dy halo.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "dw_backward_params.h"
#include "dynamic_smem.cuh"
#include "element.cuh"

namespace jax_fcm {
namespace dw_backward_detail {

template <typename T_, int K_, int S_>
struct Geometry {
  using T = T_;
  static constexpr int K = K_, S = S_;
  static constexpr int kTile = 8;  // output tile kTile x kTile; dx in 8-column register blocks
  static constexpr int kCh = 32;   // channels per block, one per lane
  static constexpr int kWarps = 8, kThreads = kWarps * 32;
  static constexpr int kTaps = K * K;
  // Widest dx region of a tile (the last tile row/column adds up to K - 1 pixels).
  static constexpr int kDxSpan = kTile * S + K - 1;
  static constexpr int kDxColBlocks = (kDxSpan + 7) / 8;
  // dy rows/columns those dx pixels read (columns: whole 8-wide register blocks).
  static constexpr int kDyRows = (kDxSpan + K - 2) / S + 1;
  static constexpr int kDyCols = (kDxColBlocks * 8 + K - 2) / S + 1;
  // x rows/columns under the tile's output windows.
  static constexpr int kXSpan = (kTile - 1) * S + K;
  static constexpr int kDyFloats = kDyRows * kDyCols * kCh, kXFloats = kXSpan * kXSpan * kCh;
  static constexpr int kReduceFloats = kWarps * (kTaps + 1) * kCh;
  static constexpr int kStageFloats = kDyFloats + kXFloats + kTaps * kCh;
  static constexpr int kSmemBytes = 4 * (kStageFloats > kReduceFloats ? kStageFloats : kReduceFloats);
};

// Division by the stride rounding toward -infinity / +infinity (halo
// coordinates go negative).
template <int S>
__device__ __forceinline__ int floor_div(int a) {
  static_assert(S == 1 || S == 2, "stride 1 or 2");
  return S == 1 ? a : a >> 1;  // arithmetic shift floors negative values
}
template <int S>
__device__ __forceinline__ int ceil_div(int a) {
  return -floor_div<S>(-a);
}

// 16-byte loads of V = 16 / sizeof(T) consecutive channels, as fp32.
template <typename T>
struct Vec16 {  // bfloat16, float16
  static constexpr int V = 8;
  static __device__ __forceinline__ void load(const T* p, float (&v)[V]) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = Pair<T>::unpack(words[i]);
      v[2 * i] = f.x, v[2 * i + 1] = f.y;
    }
  }
};
template <>
struct Vec16<float> {
  static constexpr int V = 4;
  static __device__ __forceinline__ void load(const float* p, float (&v)[V]) {
    const float4 q = __ldg(reinterpret_cast<const float4*>(p));
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
  }
};

// Stages rows [r0, r0 + rows) x columns [c0, c0 + cols) of one image's
// channels [ch0, ch0 + 32) into buf[rows][buf_cols][32] as fp32; pixels
// outside [0, lim_r) x [0, lim_c) and channels >= C become zeros.
// With `vec` (C a multiple of V, 16-byte aligned data) each lane copies V
// channels with one 16-byte load, 32 / V lanes per pixel; otherwise a lane
// copies one channel. Per-element copies made the kernel instruction-bound
// (index math and a 2-byte load per element) at a third of DRAM bandwidth.
template <class G>
__device__ __forceinline__ void stage_region(float* buf, const typename G::T* image, int r0, int rows, int c0,
                                             int cols, int buf_cols, int lim_r, int lim_c, int C, int ch0, bool vec) {
  using T = typename G::T;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int total = rows * cols;
  if (vec) {
    constexpr int V = Vec16<T>::V, kLanesPerPixel = G::kCh / V, kPixelsPerWarp = 32 / kLanesPerPixel;
    const int ch = (lane % kLanesPerPixel) * V;
    const bool ch_ok = ch0 + ch < C;  // whole vectors: C is a multiple of V
#pragma unroll 2
    for (int px = warp * kPixelsPerWarp + lane / kLanesPerPixel; px < total; px += G::kWarps * kPixelsPerWarp) {
      const int rr = px / cols, cc = px - rr * cols;
      const int gr = r0 + rr, gc = c0 + cc;
      float v[V] = {};
      if (ch_ok && gr >= 0 && gr < lim_r && gc >= 0 && gc < lim_c)
        Vec16<T>::load(image + (gr * lim_c + gc) * C + ch0 + ch, v);
      float4* dst = reinterpret_cast<float4*>(buf + (rr * buf_cols + cc) * G::kCh + ch);
#pragma unroll
      for (int i = 0; i < V / 4; ++i) dst[i] = make_float4(v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]);
    }
    return;
  }
  const bool ch_ok = ch0 + lane < C;
  for (int px = warp; px < total; px += G::kWarps) {
    const int rr = px / cols, cc = px - rr * cols;
    const int gr = r0 + rr, gc = c0 + cc;
    float v = 0.f;
    if (ch_ok && gr >= 0 && gr < lim_r && gc >= 0 && gc < lim_c)
      v = Elem<T>::to_float(image[(gr * lim_c + gc) * C + ch0 + lane]);
    buf[(rr * buf_cols + cc) * G::kCh + lane] = v;
  }
}

// dx for input row i, columns [jb, jb + 8) (the caller masks columns past the
// region). P is the left padding's parity (stride 2: which taps hit which
// column is fixed per parity, so every register index is a constant).
template <class G, int P>
__device__ __forceinline__ void dx_block(float (&out)[8], const float* dy_s, const float* w_s, int i, int jb, int b0,
                                         int dy_r0, int pad_top) {
  constexpr int K = G::K, S = G::S, kCh = G::kCh;
  const int lane = threadIdx.x % 32;
  // First staged dy column of this block: column base / S, relative to the stage.
  const int col0 = (jb - b0) / S;
#pragma unroll
  for (int kh = 0; kh < K; ++kh) {
    const int tr = i + pad_top - kh;
    if (S == 2 && (tr & 1)) continue;
    const float* row = dy_s + ((floor_div<S>(tr) - dy_r0) * G::kDyCols + col0) * kCh + lane;
    float w[K];
#pragma unroll
    for (int kw = 0; kw < K; ++kw) w[kw] = w_s[(kh * K + kw) * kCh + lane];
    if constexpr (S == 1) {
      // dy columns jb + pad_left - (K - 1) ... jb + 7 + pad_left.
      float seg[8 + K - 1];
#pragma unroll
      for (int q = 0; q < 8 + K - 1; ++q) seg[q] = row[q * kCh];
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int kw = 0; kw < K; ++kw) out[j] += seg[j + K - 1 - kw] * w[kw];
    } else {
      // Column jb + j takes tap kw when jb + j + pad_left - kw is even; jb is
      // even, so the parity is that of j + P - kw.
      constexpr int e = (P + K + 1) & 1;
      constexpr int kSeg = (8 + K - 2 - e) / 2 + 1;
      float seg[kSeg];
#pragma unroll
      for (int q = 0; q < kSeg; ++q) seg[q] = row[q * kCh];
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int kw = 0; kw < K; ++kw)
          if (((j + P - kw) & 1) == 0) out[j] += seg[(j - kw + K - 1 - e) / 2] * w[kw];
    }
  }
}

template <class G>
__global__ void __launch_bounds__(G::kThreads, 2) dw_backward_kernel(const DwBackwardShape s, const DwBackwardPointers p) {
  using T = typename G::T;
  constexpr int K = G::K, S = G::S, kTile = G::kTile, kCh = G::kCh;
  extern __shared__ __align__(16) float smem[];
  float* const dy_s = smem;                   // [kDyRows][kDyCols][kCh]
  float* const x_s = dy_s + G::kDyFloats;     // [kXSpan][kXSpan][kCh]
  float* const w_s = x_s + G::kXFloats;       // [K * K][kCh]

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int H = int(s.h), W = int(s.w), C = int(s.c), Ho = int(s.ho), Wo = int(s.wo);
  const int pt = int(s.pad_top), pl = int(s.pad_left);
  const int ch0 = int(blockIdx.y) * kCh, c = ch0 + lane;
  const int64_t n = blockIdx.z;
  const T* const x = static_cast<const T*>(p.x) + n * s.h * s.w * s.c;
  const T* const dy = static_cast<const T*>(p.dy) + n * s.ho * s.wo * s.c;
  T* const dx = static_cast<T*>(p.dx) + n * s.h * s.w * s.c;
  const T* const taps = static_cast<const T*>(p.kernel);
  const bool vec = C % Vec16<T>::V == 0 && reinterpret_cast<uintptr_t>(p.x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(p.dy) % 16 == 0;

  for (int e = threadIdx.x; e < G::kTaps * kCh; e += G::kThreads) {
    const int ch = ch0 + e % kCh;
    w_s[e] = ch < C ? Elem<T>::to_float(taps[e / kCh * C + ch]) : 0.f;
  }

  float acc[K][K] = {};
  float acc_bias = 0.f;
  const int tiles_w = (Wo + kTile - 1) / kTile, tiles = (Ho + kTile - 1) / kTile * tiles_w;
  for (int t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int oy0 = t / tiles_w * kTile, ox0 = t % tiles_w * kTile;
    const int oy1 = min(oy0 + kTile, Ho), ox1 = min(ox0 + kTile, Wo);
    // This tile's dx region [a0, a1) x [b0, b1).
    const int a0 = oy0 * S, b0 = ox0 * S;
    const int a1 = min(oy1 == Ho ? H : oy1 * S, H), b1 = min(ox1 == Wo ? W : ox1 * S, W);
    // dy rows/columns read: by the dx region, and the tile's own outputs.
    const int dy_r0 = ceil_div<S>(a0 + pt - K + 1), dy_c0 = ceil_div<S>(b0 + pl - K + 1);
    const int dy_r1 = max(floor_div<S>(a1 - 1 + pt) + 1, oy1), dy_c1 = max(floor_div<S>(b1 - 1 + pl) + 1, ox1);
    __syncthreads();  // the previous tile's readers are done with the stage
    stage_region<G>(dy_s, dy, dy_r0, dy_r1 - dy_r0, dy_c0, dy_c1 - dy_c0, G::kDyCols, Ho, Wo, C, ch0, vec);
    const int x_r0 = oy0 * S - pt, x_c0 = ox0 * S - pl;
    stage_region<G>(x_s, x, x_r0, (oy1 - oy0 - 1) * S + K, x_c0, (ox1 - ox0 - 1) * S + K, G::kXSpan, H, W, C, ch0,
                    vec);
    __syncthreads();

    // 1. Weight and bias gradients of output row oy0 + warp.
    const int oy = oy0 + warp;
    if (oy < oy1) {
      const float* grow = dy_s + ((oy - dy_r0) * G::kDyCols + (ox0 - dy_c0)) * kCh + lane;
      float g[kTile];
#pragma unroll
      for (int j = 0; j < kTile; ++j) {
        // Columns past the tile are not staged: leave them out, not times 0.
        g[j] = ox0 + j < ox1 ? grow[j * kCh] : 0.f;
        acc_bias += g[j];
      }
#pragma unroll
      for (int kh = 0; kh < K; ++kh) {
        const float* xrow = x_s + ((warp * S + kh) * G::kXSpan) * kCh + lane;
        float seg[G::kXSpan];
#pragma unroll
        for (int q = 0; q < G::kXSpan; ++q) seg[q] = xrow[q * kCh];
#pragma unroll
        for (int j = 0; j < kTile; ++j)
          if (ox0 + j < ox1)
#pragma unroll
            for (int kw = 0; kw < K; ++kw) acc[kh][kw] += seg[j * S + kw] * g[j];
      }
    }

    // 2. dx of the region's rows warp, warp + 8, ...
    for (int i = a0 + warp; i < a1; i += G::kWarps) {
      for (int jb = b0; jb < b1; jb += 8) {
        float out[8] = {};
        if (S == 2 && (pl & 1))
          dx_block<G, 1>(out, dy_s, w_s, i, jb, b0, dy_r0, pt);
        else
          dx_block<G, 0>(out, dy_s, w_s, i, jb, b0, dy_r0, pt);
        if (c < C) {
          T* dst = dx + (i * W + jb) * C + c;
#pragma unroll
          for (int j = 0; j < 8; ++j)
            if (jb + j < b1) dst[j * C] = Elem<T>::from_float(out[j]);
        }
      }
    }
  }

  // Sum the warps' weight-gradient partials and write this block's row of
  // dw_partials[n][group][tap][c].
  __syncthreads();
  float* const red = smem;  // [kWarps][K * K + 1][kCh]
#pragma unroll
  for (int kh = 0; kh < K; ++kh)
#pragma unroll
    for (int kw = 0; kw < K; ++kw) red[(warp * (G::kTaps + 1) + kh * K + kw) * kCh + lane] = acc[kh][kw];
  red[(warp * (G::kTaps + 1) + G::kTaps) * kCh + lane] = acc_bias;
  __syncthreads();
  float* const partial = p.dw_partials + (n * gridDim.x + blockIdx.x) * (G::kTaps + 1) * s.c;
  for (int e = threadIdx.x; e < (G::kTaps + 1) * kCh; e += G::kThreads) {
    float sum = 0.f;
#pragma unroll
    for (int w = 0; w < G::kWarps; ++w) sum += red[w * (G::kTaps + 1) * kCh + e];
    if (ch0 + e % kCh < C) partial[e / kCh * C + ch0 + e % kCh] = sum;
  }
}

}  // namespace dw_backward_detail

template <typename T, int K, int S>
cudaError_t launch_dw_backward(const DwBackwardShape& s, const DwBackwardPointers& p, cudaStream_t stream) {
  using G = dw_backward_detail::Geometry<T, K, S>;
  constexpr auto kernel = dw_backward_detail::dw_backward_kernel<G>;
  if (s.n == 0 || s.c == 0) return cudaSuccess;
  const int64_t chunks = (s.c + G::kCh - 1) / G::kCh;
  if (s.n > 65535 || chunks > 65535 || s.groups < 1 || s.groups > INT_MAX) return cudaErrorInvalidConfiguration;
  if (cudaError_t err = allow_dynamic_smem<kernel>(G::kSmemBytes); err != cudaSuccess) return err;
  kernel<<<dim3(unsigned(s.groups), unsigned(chunks), unsigned(s.n)), G::kThreads, G::kSmemBytes, stream>>>(s, p);
  return cudaGetLastError();
}

}  // namespace jax_fcm

#define FCM_INSTANTIATE_DW_BACKWARD_ONE(T, K, S)        \
  template cudaError_t jax_fcm::launch_dw_backward<T, K, S>( \
      const jax_fcm::DwBackwardShape&, const jax_fcm::DwBackwardPointers&, cudaStream_t);
#define FCM_INSTANTIATE_DW_BACKWARD(T)        \
  FCM_INSTANTIATE_DW_BACKWARD_ONE(T, 3, 1)   \
  FCM_INSTANTIATE_DW_BACKWARD_ONE(T, 3, 2)   \
  FCM_INSTANTIATE_DW_BACKWARD_ONE(T, 5, 1)   \
  FCM_INSTANTIATE_DW_BACKWARD_ONE(T, 5, 2)   \
  FCM_INSTANTIATE_DW_BACKWARD_ONE(T, 7, 1)   \
  FCM_INSTANTIATE_DW_BACKWARD_ONE(T, 7, 2)
