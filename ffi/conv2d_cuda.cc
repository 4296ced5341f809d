// CUDA handler of the dense conv2d: decode, check, launch on XLA's stream.
// Allocates nothing and never synchronizes (command-buffer safe).
#include <cuda_runtime.h>

#include <string>

#include "conv2d_ffi.h"
#include "conv2d_launch.h"

namespace jax_fcm {
namespace {

ffi::Error conv2d_cuda_impl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::AnyBuffer bias,
                            ffi::Result<ffi::AnyBuffer> y, Conv2dAttrs attrs) {
  Conv2dCall call;
  if (ffi::Error err = decode_conv2d(x, kernel, bias, y, attrs, &call); err.failure()) return err;
  const cudaError_t status = dispatch_conv2d(call.type, call.math, call.shape, call.ptrs, call.activation, stream);
  if (status != cudaSuccess)
    return ffi::Error::Internal(std::string("jax_fcm conv2d: CUDA launch failed: ") + cudaGetErrorString(status));
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmConv2dCuda, jax_fcm::conv2d_cuda_impl,
                              jax_fcm::bind_conv2d(xla::ffi::Ffi::Bind().Ctx<xla::ffi::PlatformStream<cudaStream_t>>()),
                              {xla::ffi::Traits::kCmdBufferCompatible});
