// Dense k x k convolution, NHWC, + bias + activation (jax_fcm.conv2d), as an
// implicit GEMM on the pointwise kernel: y[M][Cout] = A[M][K] . w[K][Cout]
// with M = N*Ho*Wo output pixels and K = kh*kw*Cin. Row m of A is pixel m's
// window taken in window order (seed 001, im2win): kernel row by kernel row,
// each a contiguous kw*Cin run of the NHWC input, which is also the order of
// the HWIO weight rows. A is never written out: each chunk of KC window
// elements is gathered straight into shared memory (zeros for padding and
// past K), so the weight matrix is read as it is and the GEMM, its
// cp.async ring, channel splits and epilogue are the pointwise kernel's.
//
// With Cin a multiple of the 16-byte vector, a vector never straddles two
// taps: one cp.async per vector, its tap found once per chunk. Otherwise (the
// stems' 3 channels) elements are gathered one by one; window order then
// packs a 3x3x3 window into one 32-wide chunk (27 of its columns used)
// instead of a chunk per tap.
#pragma once

#include "conv2d_launch.h"
#include "pointwise_kernel.cuh"

namespace jax_fcm {
namespace conv2d_detail {

template <class Tr>
struct WindowTile;

// The A operand of a conv2d call (an ASource for pointwise_detail::launch_gemm):
// the window geometry, as 32-bit values.
struct Windows {
  int h, w, cin, ho, wo, kw, stride_h, stride_w, pad_top, pad_left;

  explicit Windows(const Conv2dShape& s)
      : h(int(s.h)), w(int(s.w)), cin(int(s.cin)), ho(int(s.ho)), wo(int(s.wo)), kw(int(s.kw)),
        stride_h(int(s.stride_h)), stride_w(int(s.stride_w)), pad_top(int(s.pad_top)), pad_left(int(s.pad_left)) {}

  // One cp.async per vector: each vector inside one tap's channels, and aligned.
  bool vectorizable(const void* x, int64_t, int vec) const { return cin % vec == 0 && aligned16(x); }

  template <class Tr>
  using Tile = WindowTile<Tr>;
};

// One block tile's windows. Copy j of a thread covers A row
// (j * kThreads + tid) / kPerRow and the same vector column tid % kPerRow of
// every chunk, so a thread finds each of its rows' windows once per tile and
// each chunk's tap once per chunk.
template <class Tr>
struct WindowTile {
  using T = typename Tr::T;
  static constexpr int V = Tr::kVec, kPerRow = Tr::KC / V;
  static constexpr int kCount = Tr::kTileP * kPerRow / Tr::kThreads;
  static_assert(Tr::kThreads % kPerRow == 0 && Tr::kTileP * kPerRow % Tr::kThreads == 0, "copy layout");
  const T* x;
  const Windows g;
  int origin[kCount];  // element offset of the window's top-left (maybe padding: then outside x)
  int top[kCount];     // the window's first input row (-pad_top ..); INT_MIN / 2 past the tile's rows
  int left[kCount];    // its first input column

  __device__ WindowTile(const Windows& geometry, const void* x_all, int64_t m0, int rows, int)
      : x(static_cast<const T*>(x_all)), g(geometry) {
#pragma unroll
    for (int j = 0; j < kCount; ++j) {
      const int row = (j * Tr::kThreads + int(threadIdx.x)) / kPerRow;
      const int m = int(m0) + row;  // 32-bit: conv2d_shape_supported bounds N*Ho*Wo
      const int per_image = g.ho * g.wo;
      const int n = m / per_image, pixel = m - n * per_image;
      const int oy = pixel / g.wo, ox = pixel - oy * g.wo;
      const bool real = row < rows;  // rows past M stay zeros
      top[j] = real ? oy * g.stride_h - g.pad_top : INT_MIN / 2;
      left[j] = ox * g.stride_w - g.pad_left;
      origin[j] = real ? ((n * g.h + top[j]) * g.w + left[j]) * g.cin : 0;
    }
  }

  // Element e of a window: tap (dy, dx) and channel c, as the offset from
  // the window's origin; valid: e < K.
  struct Tap {
    int dy, dx, c, offset;
    bool valid;
  };
  __device__ __forceinline__ Tap tap(int e, int k) const {
    const int t = e / g.cin, c = e - t * g.cin, dy = t / g.kw, dx = t - dy * g.kw;
    return Tap{dy, dx, c, (dy * g.w + dx) * g.cin + c, e < k};
  }
  // Element e, the one after t (window order), without the divisions: the
  // next channel, or the next tap's first channel (one pixel on: also the
  // next offset), or the next kernel row's (W - kw pixels further on).
  __device__ __forceinline__ Tap next(Tap t, int k, int e) const {
    ++t.c, ++t.offset;
    if (t.c == g.cin) {
      t.c = 0, ++t.dx;
      if (t.dx == g.kw) t.dx = 0, ++t.dy, t.offset += (g.w - g.kw) * g.cin;
    }
    t.valid = e < k;
    return t;
  }
  __device__ __forceinline__ bool inside(int j, const Tap& t) const {
    return t.valid && unsigned(top[j] + t.dy) < unsigned(g.h) && unsigned(left[j] + t.dx) < unsigned(g.w);
  }

  // Window elements k0 .. k0 + KC of the tile's rows into a_s [kTileP][kLdA].
  __device__ __forceinline__ void stage(T* a_s, int k0, int k, bool vec) const {
    const int col = int(threadIdx.x) % kPerRow * V, e0 = k0 + col;
    T* const dst = a_s + int(threadIdx.x) / kPerRow * Tr::kLdA + col;
    constexpr int kRowStep = Tr::kThreads / kPerRow * Tr::kLdA;  // between a thread's rows
    if (vec) {
      const Tap t = tap(e0, k);
#pragma unroll
      for (int j = 0; j < kCount; ++j) {
        const bool in = inside(j, t);
        cp_async16(dst + j * kRowStep, in ? x + origin[j] + t.offset : x, in ? 16 : 0);
      }
      return;
    }
    Tap taps[V];
    taps[0] = tap(e0, k);
#pragma unroll
    for (int v = 1; v < V; ++v) taps[v] = next(taps[v - 1], k, e0 + v);
#pragma unroll
    for (int j = 0; j < kCount; ++j) {
      uint4 raw = make_uint4(0, 0, 0, 0);
      T* vals = reinterpret_cast<T*>(&raw);
#pragma unroll
      for (int v = 0; v < V; ++v)
        if (inside(j, taps[v])) vals[v] = x[origin[j] + taps[v].offset];
      *reinterpret_cast<uint4*>(dst + j * kRowStep) = raw;
    }
  }
};

}  // namespace conv2d_detail

template <typename T, int Math, int TP, int TN, int KC>
cudaError_t launch_conv2d(const Conv2dShape& s, const Conv2dPointers& p, int activation, int splits,
                          cudaStream_t stream) {
  const PointwisePointers gemm_ptrs{p.x, p.kernel, p.bias, p.y};
  return pointwise_detail::launch_gemm<T, Math, TP, TN, KC>(s.gemm(), gemm_ptrs, conv2d_detail::Windows(s),
                                                            activation, splits, stream);
}

}  // namespace jax_fcm

// Explicit instantiations for one element type and math: the tiles
// dispatch_conv2d picks (pointwise's plan over the implicit GEMM).
#define FCM_INSTANTIATE_CONV2D_ONE(T, MATH, TP, TN, KC)                                               \
  template cudaError_t jax_fcm::launch_conv2d<T, MATH, TP, TN, KC>(                                   \
      const jax_fcm::Conv2dShape&, const jax_fcm::Conv2dPointers&, int, int, cudaStream_t);
#define FCM_INSTANTIATE_CONV2D(T, MATH) FCM_GEMM_TILES(FCM_INSTANTIATE_CONV2D_ONE, T, MATH)
#define FCM_INSTANTIATE_CONV2D_WIDE(T, MATH) FCM_GEMM_TILES_WIDE(FCM_INSTANTIATE_CONV2D_ONE, T, MATH)
