// CUDA handler of the fused PW -> PW op: decode, check, launch on XLA's
// stream. Allocates nothing and never synchronizes (command-buffer safe).
#include <cuda_runtime.h>

#include <string>

#include "pw_pw_ffi.h"
#include "pw_pw_launch.h"

namespace jax_fcm {
namespace {

ffi::Error pw_pw_cuda_impl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer w1, ffi::AnyBuffer b1,
                           ffi::AnyBuffer w2, ffi::AnyBuffer b2, ffi::Result<ffi::AnyBuffer> y, PwPwAttrs attrs) {
  PwPwCall call;
  if (ffi::Error err = decode_pw_pw(x, w1, b1, w2, b2, y, attrs, /*cuda=*/true, &call); err.failure()) return err;
  const cudaError_t status = dispatch_pw_pw(call.type, call.shape, call.ptrs, call.act1, call.act2, stream);
  if (status != cudaSuccess)
    return ffi::Error::Internal(std::string("jax_fcm pw_pw: CUDA launch failed: ") + cudaGetErrorString(status));
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmPwPwCuda, jax_fcm::pw_pw_cuda_impl,
                              jax_fcm::bind_pw_pw(xla::ffi::Ffi::Bind().Ctx<xla::ffi::PlatformStream<cudaStream_t>>()),
                              {xla::ffi::Traits::kCmdBufferCompatible});
