// CUDA handler of the int8 fused PW -> PW op: decode, check, launch on XLA's
// stream (the float kernel template instantiated for int8; see pw_pw_cuda.cc).
#include <cuda_runtime.h>

#include <string>

#include "pw_pw_int8_ffi.h"
#include "pw_pw_launch.h"

namespace jax_fcm {
namespace {

ffi::Error pw_pw_int8_cuda_impl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer w1, ffi::AnyBuffer b1,
                                ffi::AnyBuffer m1, ffi::AnyBuffer w2, ffi::AnyBuffer b2, ffi::AnyBuffer m2,
                                ffi::Result<ffi::AnyBuffer> y, PwPwInt8Attrs attrs) {
  PwPwCall call;
  if (ffi::Error err = decode_pw_pw_int8(x, w1, b1, m1, w2, b2, m2, y, attrs, /*cuda=*/true, &call); err.failure())
    return err;
  const cudaError_t status = dispatch_pw_pw(call.type, call.shape, call.ptrs, 0, 0, stream);
  if (status != cudaSuccess)
    return ffi::Error::Internal(std::string("jax_fcm pw_pw_int8: CUDA launch failed: ") + cudaGetErrorString(status));
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmPwPwInt8Cuda, jax_fcm::pw_pw_int8_cuda_impl,
                              jax_fcm::bind_pw_pw_int8(
                                  xla::ffi::Ffi::Bind().Ctx<xla::ffi::PlatformStream<cudaStream_t>>()),
                              {xla::ffi::Traits::kCmdBufferCompatible});
