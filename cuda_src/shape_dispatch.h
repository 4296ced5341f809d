// Runtime -> compile-time dispatch over (element type, kernel size, stride)
// for the kernels instantiated for every k in {3, 5, 7} and stride in {1, 2}
// (the depthwise forward and backward). Host code only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "dw_pw_params.h"

namespace jax_fcm {

// Calls Launch::template run<T, K, S>(args...) for the runtime type, kernel
// size and stride; cudaErrorInvalidValue for values that were not compiled.
template <class Launch, typename T, int K, class... Args>
cudaError_t dispatch_stride(int64_t stride, Args&&... args) {
  switch (stride) {
    case 1: return Launch::template run<T, K, 1>(std::forward<Args>(args)...);
    case 2: return Launch::template run<T, K, 2>(std::forward<Args>(args)...);
  }
  return cudaErrorInvalidValue;
}

template <class Launch, typename T, class... Args>
cudaError_t dispatch_kernel_stride(int64_t kernel, int64_t stride, Args&&... args) {
  switch (kernel) {
    case 3: return dispatch_stride<Launch, T, 3>(stride, std::forward<Args>(args)...);
    case 5: return dispatch_stride<Launch, T, 5>(stride, std::forward<Args>(args)...);
    case 7: return dispatch_stride<Launch, T, 7>(stride, std::forward<Args>(args)...);
  }
  return cudaErrorInvalidValue;
}

template <class Launch, class... Args>
cudaError_t dispatch_type_kernel_stride(ElementType type, int64_t kernel, int64_t stride, Args&&... args) {
  switch (type) {
    case ElementType::kF32: return dispatch_kernel_stride<Launch, float>(kernel, stride, std::forward<Args>(args)...);
    case ElementType::kBF16:
      return dispatch_kernel_stride<Launch, __nv_bfloat16>(kernel, stride, std::forward<Args>(args)...);
    case ElementType::kF16: return dispatch_kernel_stride<Launch, __half>(kernel, stride, std::forward<Args>(args)...);
  }
  return cudaErrorInvalidValue;
}

}  // namespace jax_fcm
