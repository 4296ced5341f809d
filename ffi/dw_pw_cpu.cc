// CPU handler of the fused DW->PW op. Same contract as the CUDA kernel (see
// dw_pw_cpu_core.h for the rounding of the intermediate).
#include "dw_pw_cpu_core.h"
#include "dw_pw_ffi.h"
#include "storage_dispatch.h"

namespace jax_fcm {
namespace {

template <typename Storage>
void dw_pw_cpu(const DwPwCall& call) {
  using C = Conv<Storage>;
  const DwPwShape& s = call.shape;
  const DwPwWeightsF32 wt = DwPwWeightsF32::read<Storage>(s, call.ptrs.dw_kernel, call.ptrs.dw_bias,
                                                          call.ptrs.pw_kernel, call.ptrs.pw_bias);
  auto* y = static_cast<Storage*>(call.ptrs.y);
  depthwise_pointwise_cpu(s, static_cast<const Storage*>(call.ptrs.x), wt, call.epilogue.dw_activation,
                          [&](int64_t n, int64_t oy, int64_t ox, const float* out) {
                            Storage* dst = y + ((n * s.ho + oy) * s.wo + ox) * s.cout;
                            for (int64_t co = 0; co < s.cout; ++co)
                              dst[co] = C::from_float(apply_activation(out[co], call.epilogue.pw_activation));
                          });
}

ffi::Error dw_pw_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias,
                          ffi::AnyBuffer pw_kernel, ffi::AnyBuffer pw_bias, ffi::Result<ffi::AnyBuffer> y,
                          DwPwAttrs attrs) {
  DwPwCall call;
  if (ffi::Error err = decode_dw_pw(x, dw_kernel, dw_bias, pw_kernel, pw_bias, y, attrs, &call); err.failure())
    return err;
  with_storage_type(call.type, [&](auto tag) { dw_pw_cpu<typename decltype(tag)::type>(call); });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmDwPwCpu, jax_fcm::dw_pw_cpu_impl, jax_fcm::bind_dw_pw(xla::ffi::Ffi::Bind()));
