// Runtime -> compile-time choice of the GEMM kernel's block tile (tile_m,
// tile_n, channel_chunk of a PointwisePlan), shared by the pointwise and
// conv2d dispatchers: launch(TP, TN, KC) gets them as integral constants.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <type_traits>

#include "pointwise_params.h"

namespace jax_fcm {

template <int V>
using IntC = std::integral_constant<int, V>;

template <typename T, class Launch>
cudaError_t with_gemm_tile(const PointwisePlan& plan, Launch&& launch) {
  auto by_chunk = [&](auto tp, auto tn) -> cudaError_t {
    // 64-channel chunks exist for 16-bit types with 64- and 128-wide tiles.
    if constexpr (sizeof(T) == 2 && decltype(tn)::value >= 64)
      if (plan.channel_chunk == 64) return launch(tp, tn, IntC<64>{});
    return launch(tp, tn, IntC<32>{});
  };
  auto by_tile_n = [&](auto tp) -> cudaError_t {
    switch (plan.tile_n) {
      case 32: return by_chunk(tp, IntC<32>{});
      case 64: return by_chunk(tp, IntC<64>{});
      case 128: return by_chunk(tp, IntC<128>{});
    }
    return cudaErrorInvalidValue;
  };
  return plan.tile_m == 128 ? by_tile_n(IntC<128>{}) : by_tile_n(IntC<64>{});
}

// Runs body(T{}, IntC<Math>{}) for the element type and GEMM math (float32:
// TF32 tensor cores or full fp32 FFMA; 16-bit types: tensor cores).
template <class Body>
cudaError_t with_gemm_type(ElementType type, PwMath math, Body&& body) {
  switch (type) {
    case ElementType::kF32:
      return math == kPwMathFp32 ? body(float{}, IntC<kPwMathFp32>{}) : body(float{}, IntC<kPwMathTf32>{});
    case ElementType::kBF16: return body(__nv_bfloat16{}, IntC<kPwMathTf32>{});
    case ElementType::kF16: return body(__half{}, IntC<kPwMathTf32>{});
  }
  return cudaErrorInvalidValue;
}

}  // namespace jax_fcm
