// CUDA handler of the standalone depthwise convolution: decode, check, launch
// on XLA's stream. Allocates nothing and never synchronizes (command-buffer safe).
#include <cuda_runtime.h>

#include <string>

#include "depthwise_ffi.h"
#include "depthwise_launch.h"

namespace jax_fcm {
namespace {

ffi::Error depthwise_cuda_impl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::AnyBuffer bias,
                               ffi::Result<ffi::AnyBuffer> y, DepthwiseAttrs attrs) {
  DepthwiseCall call;
  if (ffi::Error err = decode_depthwise(x, kernel, bias, y, attrs, &call); err.failure()) return err;
  const cudaError_t status = dispatch_depthwise(call.type, call.shape, call.ptrs, call.activation, stream);
  if (status != cudaSuccess)
    return ffi::Error::Internal(std::string("jax_fcm depthwise: CUDA launch failed: ") + cudaGetErrorString(status));
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmDepthwiseCuda, jax_fcm::depthwise_cuda_impl,
                              jax_fcm::bind_depthwise(
                                  xla::ffi::Ffi::Bind().Ctx<xla::ffi::PlatformStream<cudaStream_t>>()),
                              {xla::ffi::Traits::kCmdBufferCompatible});
