// What the planner reads about a CUDA device, straight from the CUDA runtime
// (built only with the CUDA kernels; the module reports None otherwise).
#pragma once

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

// False when there is no such device (no driver, no GPU, ordinal out of range).
bool query_device_attributes(int ordinal, DeviceAttributes* out);

}  // namespace jax_fcm
