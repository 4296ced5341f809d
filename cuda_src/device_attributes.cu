#include "device_attributes.h"

namespace jax_fcm {

cudaError_t query_device_attributes(int ordinal, DeviceAttributes* out) {
  int count = 0;
  if (cudaError_t err = cudaGetDeviceCount(&count); err != cudaSuccess || ordinal < 0 || ordinal >= count) {
    cudaGetLastError();  // clear the sticky "no device" error of this runtime
    return err != cudaSuccess ? err : cudaErrorInvalidDevice;
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
    if (cudaError_t err = cudaDeviceGetAttribute(w.field, w.attr, ordinal); err != cudaSuccess) {
      cudaGetLastError();
      return err;
    }
  return cudaSuccess;
}

}  // namespace jax_fcm
