// Runtime -> compile-time dispatch of the fused PW -> PW kernel; the
// instantiations live in generated files, one per element type (CMakeLists.txt).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "dw_pw_launch.h"
#include "pw_pw_launch.h"
#include "pw_pw_wgmma_launch.h"

namespace jax_fcm {
namespace {

template <typename T>
cudaError_t by_tile_n(const PwPwShape& s, const PwPwPointers& p, int act1, int act2, cudaStream_t stream) {
  switch (pw_pw_tile_n(s.cin, s.cout)) {
    case 32: return launch_pw_pw<T, 32>(s, p, act1, act2, stream);
    case 64: return launch_pw_pw<T, 64>(s, p, act1, act2, stream);
    case 96: return launch_pw_pw<T, 96>(s, p, act1, act2, stream);
    case 128: return launch_pw_pw<T, 128>(s, p, act1, act2, stream);
  }
  return cudaErrorInvalidValue;
}

#ifdef JAX_FCM_WGMMA
template <typename T>
cudaError_t wgmma_tile_n(const PwPwShape& s, const PwPwPointers& p, int act1, int act2, cudaStream_t stream) {
  switch (pw_pw_wgmma_tile_n(s.cin, s.cout, p.block.active())) {
    case 96: return launch_pw_pw_wgmma<T, 96>(s, p, act1, act2, stream);
    case 128: return launch_pw_pw_wgmma<T, 128>(s, p, act1, act2, stream);
    case 192: return launch_pw_pw_wgmma<T, 192>(s, p, act1, act2, stream);
    default: return launch_pw_pw_wgmma<T, 64>(s, p, act1, act2, stream);  // 32 and 64
  }
}
#endif

}  // namespace

cudaError_t dispatch_pw_pw(ElementType type, const PwPwShape& s, const PwPwPointers& p, int act1, int act2,
                           cudaStream_t stream) {
  if (!pw_pw_shape_supported(type, s)) return cudaErrorInvalidValue;
  if (s.m == 0) return cudaSuccess;
#ifdef JAX_FCM_WGMMA
  // Built for sm_90a (CMakeLists.txt defines JAX_FCM_WGMMA): 16-bit types on
  // a compute capability 9.x device, for the calls pw_pw_use_wgmma picks
  // and every call with ConvNeXt's block ends (only this kernel has them).
  DeviceLimits limits;
  if (cudaError_t err = device_limits(&limits); err != cudaSuccess) return err;
  const bool wgmma_device = (type == ElementType::kBF16 || type == ElementType::kF16) && limits.major == 9;
  if (wgmma_device && (p.block.active() ? pw_pw_wgmma_operands_ok(s, p) : pw_pw_use_wgmma(s, p)))
    return type == ElementType::kF16 ? wgmma_tile_n<__half>(s, p, act1, act2, stream)
                                     : wgmma_tile_n<__nv_bfloat16>(s, p, act1, act2, stream);
#endif
  if (p.block.active()) return cudaErrorNotSupported;
  switch (type) {
    case ElementType::kF32: return by_tile_n<float>(s, p, act1, act2, stream);
    case ElementType::kBF16: return by_tile_n<__nv_bfloat16>(s, p, act1, act2, stream);
    case ElementType::kF16: return by_tile_n<__half>(s, p, act1, act2, stream);
    case ElementType::kS8: return by_tile_n<int8_t>(s, p, act1, act2, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace jax_fcm
