// CUDA handler of the standalone pointwise convolution: decode, check, launch
// on XLA's stream. Allocates nothing and never synchronizes (command-buffer safe).
#include <cuda_runtime.h>

#include <string>

#include "pointwise_ffi.h"
#include "pointwise_launch.h"

namespace jax_fcm {
namespace {

ffi::Error pointwise_cuda_impl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::AnyBuffer bias,
                               ffi::Result<ffi::AnyBuffer> y, PointwiseAttrs attrs) {
  PointwiseCall call;
  if (ffi::Error err = decode_pointwise(x, kernel, bias, y, attrs, &call); err.failure()) return err;
  const cudaError_t status = dispatch_pointwise(call.type, call.math, call.shape, call.ptrs, call.activation, stream);
  if (status != cudaSuccess)
    return ffi::Error::Internal(std::string("jax_fcm pointwise: CUDA launch failed: ") + cudaGetErrorString(status));
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmPointwiseCuda, jax_fcm::pointwise_cuda_impl,
                              jax_fcm::bind_pointwise(
                                  xla::ffi::Ffi::Bind().Ctx<xla::ffi::PlatformStream<cudaStream_t>>()),
                              {xla::ffi::Traits::kCmdBufferCompatible});
