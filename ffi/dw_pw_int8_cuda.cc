// CUDA handler of the int8 fused DW -> PW op: decode, check, launch on XLA's
// stream (the float kernel template instantiated for int8; see dw_pw_cuda.cc).
#include <cuda_runtime.h>

#include "dw_pw_cuda.h"
#include "dw_pw_int8_ffi.h"

namespace jax_fcm {
namespace {

ffi::Error dw_pw_int8_cuda_impl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias,
                                ffi::AnyBuffer dw_multiplier, ffi::AnyBuffer pw_kernel, ffi::AnyBuffer pw_bias,
                                ffi::AnyBuffer pw_multiplier, ffi::Result<ffi::AnyBuffer> y, DwPwInt8Attrs attrs) {
  DwPwCall call;
  if (ffi::Error err = decode_dw_pw_int8(x, dw_kernel, dw_bias, dw_multiplier, pw_kernel, pw_bias, pw_multiplier, y,
                                         attrs, &call);
      err.failure())
    return err;
  return launch_dw_pw_call(call, stream);
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmDwPwInt8Cuda, jax_fcm::dw_pw_int8_cuda_impl,
                              jax_fcm::bind_dw_pw_int8(
                                  xla::ffi::Ffi::Bind().Ctx<xla::ffi::PlatformStream<cudaStream_t>>()),
                              {xla::ffi::Traits::kCmdBufferCompatible});
