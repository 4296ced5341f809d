// Plain description of one fused depthwise -> pointwise call. Shared by the
// FFI handlers (C++) and the CUDA launcher; holds no CUDA or FFI types.
#pragma once

#include <cstdint>

namespace jax_fcm {

// Whether a pointer allows the 16-byte copy paths (the launchers' host-side check).
inline bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// How the pointwise GEMM is computed for float32 inputs. 16-bit inputs always
// use their own tensor-core type; this only matters for float32.
enum PwMath : int {
  kPwMathTf32 = 0,  // lax default precision: TF32 tensor cores (what XLA does)
  kPwMathFp32 = 1,  // lax.Precision.HIGHEST: full fp32 on CUDA cores
};

// kS8: the quantized kernels (int8 activations and weights, int32 biases,
// fp32 requantization multipliers; see cuda_src/requantize.h).
enum class ElementType : int { kF32 = 0, kBF16 = 1, kF16 = 2, kS8 = 3 };

struct DwPwShape {
  int64_t n = 0, h = 0, w = 0, c = 0;  // input NHWC
  int64_t ho = 0, wo = 0, cout = 0;    // output NHWC (N shared)
  int64_t kernel = 0, stride = 0;      // square depthwise kernel, equal strides
  int64_t pad_top = 0, pad_left = 0;   // bottom/right padding is implied by ho/wo
};

// The CUDA kernels index within one image, the depthwise taps and the
// pointwise matrix in 32-bit arithmetic (64-bit index math was a third of a
// deep layer's instructions); only image and output-row bases are 64-bit.
// Python rejects larger shapes before launch; the handler re-checks.
inline bool dw_pw_offsets_fit_int32(const DwPwShape& s) {
  constexpr int64_t kMax = 0x7fffffff;
  return s.h * s.w * s.c <= kMax && s.kernel * s.kernel * s.c <= kMax && s.c * s.cout <= kMax &&
         s.ho * s.wo * s.cout <= kMax;
}

struct DwPwEpilogue {
  int dw_activation = 0;
  int pw_activation = 0;
  // int8: the requantized values' clamp ranges (ReLU and ReLU6 folded in:
  // [0, 127] and [0, round(6 / scale)]); the activations above are unused.
  int dw_qmin = -128, dw_qmax = 127;
  int pw_qmin = -128, pw_qmax = 127;
};

struct DwPwPointers {
  const void* x = nullptr;
  const void* dw_kernel = nullptr;  // (k, k, 1, C) == [k*k][C]
  const void* dw_bias = nullptr;    // (C,); int32 for int8
  const void* pw_kernel = nullptr;  // (1, 1, C, Cout) == [C][Cout]; int8: (Cout, C), transposed
  const void* pw_bias = nullptr;    // (Cout,); int32 for int8
  void* y = nullptr;
  const float* dw_multiplier = nullptr;  // int8 only: (C,) requantization multipliers
  const float* pw_multiplier = nullptr;  // int8 only: (Cout,)
};

struct DwPwTileConfig {
  int64_t tile_h = 8, tile_w = 8;       // output pixels per block
  int64_t tile_n = 64;                  // output channels per GEMM pass
  int64_t cout_tiles_per_block = 1;     // GEMM passes per block over one depthwise result
  int64_t channel_splits = 1;           // blocks per cluster splitting the input channels
  int64_t tiles_per_block = 0;          // pixel tiles one block walks (0: one wave of resident blocks)
  int64_t channel_chunk = 32;           // input channels per step: 32, or 64 (16-bit types, 8x8 tiles, tile_n >= 64)
};

}  // namespace jax_fcm
