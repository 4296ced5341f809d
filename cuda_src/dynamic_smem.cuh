// Opt-in to more than 48 KB of dynamic shared memory, once per kernel and
// device: cudaFuncSetAttribute costs a driver call, so every launch after the
// first reads a cached grant instead. A function attribute, not a stream
// operation: safe while XLA captures a command buffer.
#pragma once

#include <cuda_runtime.h>

#include <atomic>

#include "dw_pw_launch.h"

namespace jax_fcm {

template <auto Kernel>
cudaError_t allow_dynamic_smem(int bytes) {
  static std::atomic<int> granted[kMaxDevices] = {};
  if (bytes <= 48 * 1024) return cudaSuccess;
  int device = 0;
  if (cudaError_t err = cudaGetDevice(&device); err != cudaSuccess) return err;
  if (device < kMaxDevices && granted[device].load() >= bytes) return cudaSuccess;
  if (cudaError_t err = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
      err != cudaSuccess)
    return err;
  if (device < kMaxDevices) granted[device].store(bytes);
  return cudaSuccess;
}

}  // namespace jax_fcm
