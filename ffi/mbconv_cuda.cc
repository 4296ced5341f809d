// CUDA handler of the fused MBConv op: decode, check, launch on XLA's stream
// (no allocation, no synchronization: command-buffer compatible).
#include <cuda_runtime.h>

#include <string>

#include "dw_pw_launch.h"
#include "mbconv_ffi.h"
#include "mbconv_launch.h"

namespace jax_fcm {
namespace {

ffi::Error mbconv_cuda_impl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer expand_kernel,
                            ffi::AnyBuffer expand_bias, ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias,
                            ffi::AnyBuffer project_kernel, ffi::AnyBuffer project_bias, ffi::Result<ffi::AnyBuffer> y,
                            MbconvAttrs attrs) {
  MbconvCall call;
  if (ffi::Error err = decode_mbconv(x, expand_kernel, expand_bias, dw_kernel, dw_bias, project_kernel, project_bias,
                                     y, attrs, &call);
      err.failure())
    return err;
  if (!mbconv_config_supported(call.shape, call.tile_n, call.channel_splits))
    return ffi::Error::InvalidArgument("jax_fcm mbconv: no compiled kernel for tile_n " + std::to_string(call.tile_n));
  if (!mbconv_offsets_fit_int32(call.shape))
    return ffi::Error::InvalidArgument(
        "jax_fcm mbconv: an image, a weight matrix or an output image has 2**31 elements or more (the CUDA kernel "
        "indexes them with 32-bit offsets)");
  DeviceLimits limits;
  if (cudaError_t err = device_limits(&limits); err != cudaSuccess)
    return ffi::Error::Internal(std::string("jax_fcm mbconv: ") + cudaGetErrorString(err));
  const int smem = mbconv_smem_bytes(call.type, int(call.shape.inner.kernel), int(call.shape.inner.stride),
                                     call.tile_n, call.channel_splits, call.shape.cin);
  if (smem < 0 || smem > limits.max_dynamic_smem)
    return ffi::Error::InvalidArgument("jax_fcm mbconv: Cin = " + std::to_string(call.shape.cin) + " needs " +
                                       std::to_string(smem) + " bytes of shared memory per block; this GPU has " +
                                       std::to_string(limits.max_dynamic_smem));
  const cudaError_t status =
      dispatch_mbconv(call.type, call.math, call.shape, call.tile_n, call.channel_splits, call.epilogue, call.ptrs, stream);
  if (status != cudaSuccess)
    return ffi::Error::Internal(std::string("jax_fcm mbconv: CUDA launch failed: ") + cudaGetErrorString(status));
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmMbconvCuda, jax_fcm::mbconv_cuda_impl,
                              jax_fcm::bind_mbconv(xla::ffi::Ffi::Bind().Ctx<xla::ffi::PlatformStream<cudaStream_t>>()),
                              {xla::ffi::Traits::kCmdBufferCompatible});
