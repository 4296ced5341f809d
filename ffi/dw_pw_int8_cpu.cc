// CPU handler of the int8 fused DW -> PW op: the integer math of the CUDA
// kernel (dw_pw_int8_cpu_core.h).
#include "dw_pw_int8_cpu_core.h"
#include "dw_pw_int8_ffi.h"

namespace jax_fcm {
namespace {

ffi::Error dw_pw_int8_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias,
                               ffi::AnyBuffer dw_multiplier, ffi::AnyBuffer pw_kernel, ffi::AnyBuffer pw_bias,
                               ffi::AnyBuffer pw_multiplier, ffi::Result<ffi::AnyBuffer> y, DwPwInt8Attrs attrs) {
  DwPwCall call;
  if (ffi::Error err = decode_dw_pw_int8(x, dw_kernel, dw_bias, dw_multiplier, pw_kernel, pw_bias, pw_multiplier, y,
                                         attrs, &call);
      err.failure())
    return err;
  dw_pw_int8_host(call.shape, call.epilogue, call.ptrs);
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmDwPwInt8Cpu, jax_fcm::dw_pw_int8_cpu_impl,
                              jax_fcm::bind_dw_pw_int8(xla::ffi::Ffi::Bind()));
