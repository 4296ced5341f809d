// What the launcher and the planner read about a CUDA device, straight from
// the CUDA runtime (built only with the CUDA kernels; the Python module
// reports None otherwise).
#pragma once

#include <cuda_runtime.h>

namespace jax_fcm {

struct DeviceAttributes {
  int sm_count = 0;
  int smem_per_block_optin = 0;  // bytes one block may opt in to
  int smem_per_sm = 0;           // bytes
  int registers_per_sm = 0;
  int l2_bytes = 0;
  int major = 0, minor = 0;      // compute capability
  int bus_width_bits = 0;        // global memory bus
};

// cudaSuccess, or the error of the first query that failed (no driver, no GPU,
// ordinal out of range); the runtime's last error is cleared either way.
cudaError_t query_device_attributes(int ordinal, DeviceAttributes* out);

}  // namespace jax_fcm
