// Runtime -> compile-time dispatch of the standalone pointwise kernel; the
// instantiations live in generated files, one per element type and PW math
// (CMakeLists.txt).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "dw_pw_launch.h"
#include "gemm_tile_dispatch.h"
#include "pointwise_launch.h"
#include "pointwise_wgmma_launch.h"

namespace jax_fcm {
namespace {

#ifdef JAX_FCM_WGMMA
template <typename T>
cudaError_t wgmma_tile_n(const PointwisePlan& plan, const PointwiseShape& s, const PointwisePointers& p, int act,
                         cudaStream_t stream) {
  if (plan.blocks_per_sm == 2)
    return plan.tile_n == 128 ? launch_pointwise_wgmma<T, 128, 2>(s, p, act, stream)
                              : launch_pointwise_wgmma<T, 64, 2>(s, p, act, stream);
  return plan.tile_n == 128 ? launch_pointwise_wgmma<T, 128, 1>(s, p, act, stream)
                            : launch_pointwise_wgmma<T, 64, 1>(s, p, act, stream);
}
#endif

}  // namespace

cudaError_t dispatch_pointwise(ElementType type, PwMath math, const PointwiseShape& s, const PointwisePointers& p,
                               int activation, cudaStream_t stream) {
  if (!pointwise_shape_supported(s)) return cudaErrorInvalidValue;
  if (s.m == 0) return cudaSuccess;
  DeviceLimits limits;
  if (cudaError_t err = device_limits(&limits); err != cudaSuccess) return err;
#ifdef JAX_FCM_WGMMA
  // Built for sm_90a (CMakeLists.txt defines JAX_FCM_WGMMA), on a compute
  // capability 9.x device, with operands the kernel takes.
  const bool wgmma = limits.major == 9 && pointwise_wgmma_operands_ok(s, p);
#else
  const bool wgmma = false;
#endif
  const PointwisePlan plan = plan_pointwise(type, s, limits.sm_count, limits.clusters, wgmma);
#ifdef JAX_FCM_WGMMA
  if (plan.wgmma)  // 16-bit types only
    return type == ElementType::kF16 ? wgmma_tile_n<__half>(plan, s, p, activation, stream)
                                     : wgmma_tile_n<__nv_bfloat16>(plan, s, p, activation, stream);
#endif
  return with_gemm_type(type, math, [&](auto t, auto gemm_math) {
    using T = decltype(t);
    return with_gemm_tile<T>(plan, [&](auto tp, auto tn, auto kc) {
      return launch_pointwise<T, decltype(gemm_math)::value, decltype(tp)::value, decltype(tn)::value,
                              decltype(kc)::value>(s, p, activation, plan.splits, stream);
    });
  });
}

}  // namespace jax_fcm
