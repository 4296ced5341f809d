// Runtime -> compile-time dispatch of the depthwise backward kernel; the
// instantiations live in generated files, one per element type (CMakeLists.txt).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "dw_backward_launch.h"

namespace jax_fcm {
namespace {

template <typename T, int K>
cudaError_t by_stride(const DwBackwardShape& s, const DwBackwardPointers& p, cudaStream_t stream) {
  switch (s.stride) {
    case 1: return launch_dw_backward<T, K, 1>(s, p, stream);
    case 2: return launch_dw_backward<T, K, 2>(s, p, stream);
  }
  return cudaErrorInvalidValue;
}

template <typename T>
cudaError_t by_kernel(const DwBackwardShape& s, const DwBackwardPointers& p, cudaStream_t stream) {
  switch (s.kernel) {
    case 3: return by_stride<T, 3>(s, p, stream);
    case 5: return by_stride<T, 5>(s, p, stream);
    case 7: return by_stride<T, 7>(s, p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t dispatch_dw_backward(ElementType type, const DwBackwardShape& s, const DwBackwardPointers& p,
                                 cudaStream_t stream) {
  if (!dw_backward_shape_supported(s)) return cudaErrorInvalidValue;
  switch (type) {
    case ElementType::kF32: return by_kernel<float>(s, p, stream);
    case ElementType::kBF16: return by_kernel<__nv_bfloat16>(s, p, stream);
    case ElementType::kF16: return by_kernel<__half>(s, p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace jax_fcm
