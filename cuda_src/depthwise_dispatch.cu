// Runtime -> compile-time dispatch of the standalone depthwise kernel; the
// instantiations live in generated files, one per element type (CMakeLists.txt).
#include "depthwise_launch.h"
#include "shape_dispatch.h"

namespace jax_fcm {
namespace {

struct LaunchDepthwise {
  template <typename T, int K, int S>
  static cudaError_t run(const DepthwiseShape& s, const DepthwisePointers& p, int activation, cudaStream_t stream) {
    return launch_depthwise<T, K, S>(s, p, activation, stream);
  }
};

}  // namespace

cudaError_t dispatch_depthwise(ElementType type, const DepthwiseShape& s, const DepthwisePointers& p, int activation,
                               cudaStream_t stream) {
  if (!depthwise_shape_supported(s)) return cudaErrorInvalidValue;
  return dispatch_type_kernel_stride<LaunchDepthwise>(type, s.kernel, s.stride, s, p, activation, stream);
}

}  // namespace jax_fcm
