// Runtime -> compile-time dispatch for the fused DW->PW kernels. The kernels
// themselves are instantiated in generated files (see CMakeLists.txt), so this
// translation unit compiles quickly.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "dw_pw_launch.h"

namespace jax_fcm {
namespace {

struct Call {
  const DwPwShape& shape;
  const DwPwEpilogue& epilogue;
  const DwPwPointers& ptrs;
  cudaStream_t stream;
};

template <typename T, int Math, int K, int S>
cudaError_t by_tile_n(int64_t tile_n, const Call& c) {
  switch (tile_n) {
    case 32: return launch_dw_pw<T, Math, K, S, 32>(c.shape, c.epilogue, c.ptrs, c.stream);
    case 64: return launch_dw_pw<T, Math, K, S, 64>(c.shape, c.epilogue, c.ptrs, c.stream);
    case 128: return launch_dw_pw<T, Math, K, S, 128>(c.shape, c.epilogue, c.ptrs, c.stream);
    case 192: return launch_dw_pw<T, Math, K, S, 192>(c.shape, c.epilogue, c.ptrs, c.stream);
    default: return cudaErrorInvalidValue;
  }
}

template <typename T, int Math, int K>
cudaError_t by_stride(const DwPwTileConfig& tile, const Call& c) {
  switch (c.shape.stride) {
    case 1: return by_tile_n<T, Math, K, 1>(tile.tile_n, c);
    case 2: return by_tile_n<T, Math, K, 2>(tile.tile_n, c);
    default: return cudaErrorInvalidValue;
  }
}

template <typename T, int Math>
cudaError_t by_kernel(const DwPwTileConfig& tile, const Call& c) {
  switch (c.shape.kernel) {
    case 3: return by_stride<T, Math, 3>(tile, c);
    case 5: return by_stride<T, Math, 5>(tile, c);
    case 7: return by_stride<T, Math, 7>(tile, c);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

bool dw_pw_config_supported(const DwPwShape& shape, const DwPwTileConfig& tile) {
  const bool k_ok = shape.kernel == 3 || shape.kernel == 5 || shape.kernel == 7;
  const bool s_ok = shape.stride == 1 || shape.stride == 2;
  const bool n_ok = tile.tile_n == 32 || tile.tile_n == 64 || tile.tile_n == 128 || tile.tile_n == 192;
  return k_ok && s_ok && n_ok && tile.tile_h == 8 && tile.tile_w == 8;
}

cudaError_t dispatch_dw_pw(ElementType type, PwMath math, const DwPwShape& shape, const DwPwTileConfig& tile,
                           const DwPwEpilogue& epilogue, const DwPwPointers& ptrs, cudaStream_t stream) {
  if (!dw_pw_config_supported(shape, tile)) return cudaErrorInvalidValue;
  const Call c{shape, epilogue, ptrs, stream};
  switch (type) {
    case ElementType::kF32:
      return math == kPwMathFp32 ? by_kernel<float, kPwMathFp32>(tile, c) : by_kernel<float, kPwMathTf32>(tile, c);
    case ElementType::kBF16: return by_kernel<__nv_bfloat16, kPwMathTf32>(tile, c);
    case ElementType::kF16: return by_kernel<__half, kPwMathTf32>(tile, c);
  }
  return cudaErrorInvalidValue;
}

}  // namespace jax_fcm
