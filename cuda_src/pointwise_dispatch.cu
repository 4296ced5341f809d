// Runtime -> compile-time dispatch of the standalone pointwise kernel; the
// instantiations live in generated files, one per element type and PW math
// (CMakeLists.txt).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "dw_pw_launch.h"
#include "pointwise_launch.h"
#include "pointwise_wgmma_launch.h"

namespace jax_fcm {
namespace {

template <typename T, int Math, int TP, int TN>
cudaError_t by_chunk(const PointwisePlan& plan, const PointwiseShape& s, const PointwisePointers& p, int act,
                     cudaStream_t stream) {
  if constexpr (sizeof(T) == 2 && TN >= 64)
    if (plan.channel_chunk == 64) return launch_pointwise<T, Math, TP, TN, 64>(s, p, act, plan.splits, stream);
  return launch_pointwise<T, Math, TP, TN, 32>(s, p, act, plan.splits, stream);
}

template <typename T, int Math, int TP>
cudaError_t by_tile_n(const PointwisePlan& plan, const PointwiseShape& s, const PointwisePointers& p, int act,
                      cudaStream_t stream) {
  switch (plan.tile_n) {
    case 32: return by_chunk<T, Math, TP, 32>(plan, s, p, act, stream);
    case 64: return by_chunk<T, Math, TP, 64>(plan, s, p, act, stream);
    case 128: return by_chunk<T, Math, TP, 128>(plan, s, p, act, stream);
  }
  return cudaErrorInvalidValue;
}

template <typename T, int Math>
cudaError_t by_tile_m(const PointwisePlan& plan, const PointwiseShape& s, const PointwisePointers& p, int act,
                      cudaStream_t stream) {
  return plan.tile_m == 128 ? by_tile_n<T, Math, 128>(plan, s, p, act, stream)
                            : by_tile_n<T, Math, 64>(plan, s, p, act, stream);
}

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
  switch (type) {
    case ElementType::kF32:
      return math == kPwMathFp32 ? by_tile_m<float, kPwMathFp32>(plan, s, p, activation, stream)
                                 : by_tile_m<float, kPwMathTf32>(plan, s, p, activation, stream);
    case ElementType::kBF16: return by_tile_m<__nv_bfloat16, kPwMathTf32>(plan, s, p, activation, stream);
    case ElementType::kF16: return by_tile_m<__half, kPwMathTf32>(plan, s, p, activation, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace jax_fcm
