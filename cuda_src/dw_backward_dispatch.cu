// Runtime -> compile-time dispatch of the depthwise backward kernel; the
// instantiations live in generated files, one per element type (CMakeLists.txt).
#include "dw_backward_launch.h"
#include "shape_dispatch.h"

namespace jax_fcm {
namespace {

struct LaunchDwBackward {
  template <typename T, int K, int S>
  static cudaError_t run(const DwBackwardShape& s, const DwBackwardPointers& p, cudaStream_t stream) {
    return launch_dw_backward<T, K, S>(s, p, stream);
  }
};

}  // namespace

cudaError_t dispatch_dw_backward(ElementType type, const DwBackwardShape& s, const DwBackwardPointers& p,
                                 cudaStream_t stream) {
  if (!dw_backward_shape_supported(s)) return cudaErrorInvalidValue;
  return dispatch_type_kernel_stride<LaunchDwBackward>(type, s.kernel, s.stride, s, p, stream);
}

}  // namespace jax_fcm
