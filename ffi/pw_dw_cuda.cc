// CUDA handler of pw_dw: decode, check, launch on XLA's stream (no
// allocation, no synchronization: command-buffer compatible).
#include <cuda_runtime.h>

#include <string>

#include "dw_pw_launch.h"
#include "mbconv_launch.h"
#include "pw_dw_ffi.h"

namespace jax_fcm {
namespace {

ffi::Error pw_dw_cuda_impl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer pw_kernel, ffi::AnyBuffer pw_bias,
                           ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias, ffi::Result<ffi::AnyBuffer> y,
                           PwDwAttrs attrs) {
  MbconvCall call;
  if (ffi::Error err = decode_pw_dw(x, pw_kernel, pw_bias, dw_kernel, dw_bias, y, attrs, &call); err.failure())
    return err;
  if (!mbconv_offsets_fit_int32(call.shape))
    return ffi::Error::InvalidArgument(
        "jax_fcm pw_dw: an image or a weight matrix has 2**31 elements or more (the CUDA kernel indexes them with "
        "32-bit offsets)");
  DeviceLimits limits;
  if (cudaError_t err = device_limits(&limits); err != cudaSuccess)
    return ffi::Error::Internal(std::string("jax_fcm pw_dw: ") + cudaGetErrorString(err));
  const int smem = pw_dw_smem_bytes(call.type, int(call.shape.inner.kernel), int(call.shape.inner.stride),
                                    call.shape.cin);
  if (smem < 0 || smem > limits.max_dynamic_smem)
    return ffi::Error::InvalidArgument("jax_fcm pw_dw: Cin = " + std::to_string(call.shape.cin) + " needs " +
                                       std::to_string(smem) + " bytes of shared memory per block; this GPU has " +
                                       std::to_string(limits.max_dynamic_smem));
  const cudaError_t status = dispatch_pw_dw(call.type, call.math, call.shape, call.epilogue, call.ptrs, stream);
  if (status != cudaSuccess)
    return ffi::Error::Internal(std::string("jax_fcm pw_dw: CUDA launch failed: ") + cudaGetErrorString(status));
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmPwDwCuda, jax_fcm::pw_dw_cuda_impl,
                              jax_fcm::bind_pw_dw(xla::ffi::Ffi::Bind().Ctx<xla::ffi::PlatformStream<cudaStream_t>>()),
                              {xla::ffi::Traits::kCmdBufferCompatible});
