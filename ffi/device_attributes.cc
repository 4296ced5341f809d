#include "device_attributes.h"

#include <cuda_runtime.h>

namespace jax_fcm {

bool query_device_attributes(int ordinal, DeviceAttributes* out) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || ordinal < 0 || ordinal >= count) {
    cudaGetLastError();  // clear the sticky "no device" error of this runtime
    return false;
  }
  const struct {
    cudaDeviceAttr attr;
    int* field;
  } wanted[] = {
      {cudaDevAttrMultiProcessorCount, &out->sm_count},
      {cudaDevAttrMaxSharedMemoryPerBlockOptin, &out->smem_per_block_optin},
      {cudaDevAttrMaxSharedMemoryPerMultiprocessor, &out->smem_per_sm},
      {cudaDevAttrMaxRegistersPerMultiprocessor, &out->registers_per_sm},
      {cudaDevAttrL2CacheSize, &out->l2_bytes},
      {cudaDevAttrComputeCapabilityMajor, &out->major},
      {cudaDevAttrComputeCapabilityMinor, &out->minor},
      {cudaDevAttrGlobalMemoryBusWidth, &out->bus_width_bits},
  };
  for (const auto& w : wanted)
    if (cudaDeviceGetAttribute(w.field, w.attr, ordinal) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
  return true;
}

}  // namespace jax_fcm
