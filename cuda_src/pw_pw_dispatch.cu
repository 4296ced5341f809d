// Runtime -> compile-time dispatch of the fused PW -> PW kernel; the
// instantiations live in generated files, one per element type (CMakeLists.txt).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "pw_pw_launch.h"

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

}  // namespace

cudaError_t dispatch_pw_pw(ElementType type, const PwPwShape& s, const PwPwPointers& p, int act1, int act2,
                           cudaStream_t stream) {
  if (!pw_pw_shape_supported(type, s)) return cudaErrorInvalidValue;
  switch (type) {
    case ElementType::kF32: return by_tile_n<float>(s, p, act1, act2, stream);
    case ElementType::kBF16: return by_tile_n<__nv_bfloat16>(s, p, act1, act2, stream);
    case ElementType::kF16: return by_tile_n<__half>(s, p, act1, act2, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace jax_fcm
