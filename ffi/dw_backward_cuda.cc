// CUDA handler of the depthwise backward: decode, check, launch on XLA's
// stream. Allocates nothing and never synchronizes (command-buffer safe).
#include <cuda_runtime.h>

#include <string>

#include "dw_backward_ffi.h"
#include "dw_backward_launch.h"

namespace jax_fcm {
namespace {

ffi::Error dw_backward_cuda_impl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer dy, ffi::AnyBuffer kernel,
                                 ffi::Result<ffi::AnyBuffer> dx, ffi::Result<ffi::AnyBuffer> dw_partials,
                                 DwBackwardAttrs attrs) {
  DwBackwardCall call;
  if (ffi::Error err = decode_dw_backward(x, dy, kernel, dx, dw_partials, attrs, &call); err.failure()) return err;
  const cudaError_t status = dispatch_dw_backward(call.type, call.shape, call.ptrs, stream);
  if (status != cudaSuccess)
    return ffi::Error::Internal(std::string("jax_fcm dw_backward: CUDA launch failed: ") + cudaGetErrorString(status));
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmDwBackwardCuda, jax_fcm::dw_backward_cuda_impl,
                              jax_fcm::bind_dw_backward(
                                  xla::ffi::Ffi::Bind().Ctx<xla::ffi::PlatformStream<cudaStream_t>>()),
                              {xla::ffi::Traits::kCmdBufferCompatible});
