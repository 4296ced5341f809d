// Runtime -> compile-time dispatch for the fused DW->PW kernels. The kernels
// themselves are instantiated in generated files (see CMakeLists.txt), so this
// translation unit compiles quickly.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <cstdint>

#include "device_attributes.h"
#include "dw_pw_launch.h"

namespace jax_fcm {
namespace {

struct Call {
  const DwPwShape& shape;
  const DwPwEpilogue& epilogue;
  const DwPwPointers& ptrs;
  cudaStream_t stream;
};

template <typename T, int Math, int K, int S, int TH, int KC>
cudaError_t by_tile_n(const DwPwTileConfig& tile, const Call& c) {
  switch (tile.tile_n) {
    case 32:
      if constexpr (TH == 8 && KC == 32)
        return launch_dw_pw<T, Math, K, S, 32, TH, KC>(c.shape, c.epilogue, c.ptrs, tile, c.stream);
      break;
    case 64: return launch_dw_pw<T, Math, K, S, 64, TH, KC>(c.shape, c.epilogue, c.ptrs, tile, c.stream);
    case 128: return launch_dw_pw<T, Math, K, S, 128, TH, KC>(c.shape, c.epilogue, c.ptrs, tile, c.stream);
    case 160:
      if constexpr (TH == 8)
        return launch_dw_pw<T, Math, K, S, 160, TH, KC>(c.shape, c.epilogue, c.ptrs, tile, c.stream);
      break;
    case 192: return launch_dw_pw<T, Math, K, S, 192, TH, KC>(c.shape, c.epilogue, c.ptrs, tile, c.stream);
  }
  return cudaErrorInvalidValue;
}

template <typename T, int Math, int K, int S, int TH>
cudaError_t by_chunk(const DwPwTileConfig& tile, const Call& c) {
  if (tile.channel_chunk == 32) return by_tile_n<T, Math, K, S, TH, 32>(tile, c);
  if constexpr (sizeof(T) <= 2 && TH == 8)
    if (tile.channel_chunk == 64) return by_tile_n<T, Math, K, S, TH, 64>(tile, c);
  return cudaErrorInvalidValue;
}

template <typename T, int Math, int K, int S>
cudaError_t by_tile_h(const DwPwTileConfig& tile, const Call& c) {
  switch (tile.tile_h) {
    case 8: return by_chunk<T, Math, K, S, 8>(tile, c);
    case 4: return by_chunk<T, Math, K, S, 4>(tile, c);
    default: return cudaErrorInvalidValue;
  }
}

template <typename T, int Math, int K>
cudaError_t by_stride(const DwPwTileConfig& tile, const Call& c) {
  switch (c.shape.stride) {
    case 1: return by_tile_h<T, Math, K, 1>(tile, c);
    case 2: return by_tile_h<T, Math, K, 2>(tile, c);
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

cudaError_t device_limits(DeviceLimits* limits) {
  // Read once per device (query_device_attributes, the planner's reader too);
  // every launch then reads the cache.
  static std::atomic<int> cached_smem[kMaxDevices] = {};
  static std::atomic<int> cached_major[kMaxDevices] = {};
  static std::atomic<int> cached_sms[kMaxDevices] = {};
  int device = 0;
  if (cudaError_t err = cudaGetDevice(&device); err != cudaSuccess) return err;
  int smem = device < kMaxDevices ? cached_smem[device].load() : 0;
  int major = device < kMaxDevices ? cached_major[device].load() : 0;
  int sms = device < kMaxDevices ? cached_sms[device].load() : 0;
  if (smem <= 0 || major <= 0 || sms <= 0) {
    DeviceAttributes attrs;
    if (cudaError_t err = query_device_attributes(device, &attrs); err != cudaSuccess) return err;
    smem = attrs.smem_per_block_optin, major = attrs.major, sms = attrs.sm_count;
    if (device < kMaxDevices)
      cached_smem[device].store(smem), cached_major[device].store(major), cached_sms[device].store(sms);
  }
  limits->max_dynamic_smem = smem;
  limits->clusters = major >= 9;
  limits->major = major;
  limits->sm_count = sms;
  return cudaSuccess;
}

bool dw_pw_config_supported(ElementType type, const DwPwShape& shape, const DwPwTileConfig& tile) {
  const bool k_ok = shape.kernel == 3 || shape.kernel == 5 || shape.kernel == 7;
  const bool s_ok = shape.stride == 1 || shape.stride == 2;
  const bool n_ok = ((tile.tile_n == 32 || tile.tile_n == 160) && tile.tile_h == 8) || tile.tile_n == 64 ||
                    tile.tile_n == 128 || tile.tile_n == 192;
  const bool hw_ok = (tile.tile_h == 8 || tile.tile_h == 4) && tile.tile_w == 8;
  const bool split_ok = tile.channel_splits == 1 || tile.channel_splits == 2 || tile.channel_splits == 4 ||
                        tile.channel_splits == 8;
  const bool chunk_ok = tile.channel_chunk == 32 || (tile.channel_chunk == 64 && type != ElementType::kF32 &&
                                                      tile.tile_h == 8 && tile.tile_n >= 64);
  return k_ok && s_ok && n_ok && hw_ok && split_ok && chunk_ok && tile.cout_tiles_per_block >= 1 &&
         tile.tiles_per_block >= 0;
}

cudaError_t dispatch_dw_pw(ElementType type, PwMath math, const DwPwShape& shape, const DwPwTileConfig& tile,
                           const DwPwEpilogue& epilogue, const DwPwPointers& ptrs, cudaStream_t stream) {
  if (!dw_pw_config_supported(type, shape, tile) || !dw_pw_offsets_fit_int32(shape)) return cudaErrorInvalidValue;
  const Call c{shape, epilogue, ptrs, stream};
  switch (type) {
    case ElementType::kF32:
      return math == kPwMathFp32 ? by_kernel<float, kPwMathFp32>(tile, c) : by_kernel<float, kPwMathTf32>(tile, c);
    case ElementType::kBF16: return by_kernel<__nv_bfloat16, kPwMathTf32>(tile, c);
    case ElementType::kF16: return by_kernel<__half, kPwMathTf32>(tile, c);
    case ElementType::kS8: return by_kernel<int8_t, kPwMathTf32>(tile, c);
  }
  return cudaErrorInvalidValue;
}

}  // namespace jax_fcm
