// Runtime -> compile-time dispatch of the dense conv2d kernel; the
// instantiations live in generated files, one per element type and math
// (CMakeLists.txt).
#include "conv2d_launch.h"
#include "dw_pw_launch.h"
#include "gemm_tile_dispatch.h"

namespace jax_fcm {

cudaError_t dispatch_conv2d(ElementType type, PwMath math, const Conv2dShape& s, const Conv2dPointers& p,
                            int activation, cudaStream_t stream) {
  if (!conv2d_shape_supported(s)) return cudaErrorInvalidValue;
  if (s.gemm().m == 0) return cudaSuccess;
  DeviceLimits limits;
  if (cudaError_t err = device_limits(&limits); err != cudaSuccess) return err;
  const PointwisePlan plan = plan_conv2d(type, s, limits.sm_count, limits.clusters);
  return with_gemm_type(type, math, [&](auto t, auto gemm_math) {
    using T = decltype(t);
    return with_gemm_tile<T>(plan, [&](auto tp, auto tn, auto kc) {
      return launch_conv2d<T, decltype(gemm_math)::value, decltype(tp)::value, decltype(tn)::value,
                           decltype(kc)::value>(s, p, activation, plan.splits, stream);
    });
  });
}

}  // namespace jax_fcm
