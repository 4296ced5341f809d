// CPU handler of the int8 fused DW -> PW op: the integer math of the CUDA
// kernel (int32 sums of the shared depthwise loop, requantize() of
// cuda_src/requantize.h), pixel by pixel.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "depthwise_cpu_core.h"
#include "dw_pw_int8_ffi.h"
#include "requantize.h"

namespace jax_fcm {
namespace {

void dw_pw_int8_cpu(const DwPwCall& call) {
  const DwPwShape& s = call.shape;
  const DwPwEpilogue& e = call.epilogue;
  const auto* x = static_cast<const int8_t*>(call.ptrs.x);
  const auto* dw = static_cast<const int8_t*>(call.ptrs.dw_kernel);
  const auto* dw_bias = static_cast<const int32_t*>(call.ptrs.dw_bias);
  const auto* pw = static_cast<const int8_t*>(call.ptrs.pw_kernel);  // [Cout][C]
  const auto* pw_bias = static_cast<const int32_t*>(call.ptrs.pw_bias);
  auto* y = static_cast<int8_t*>(call.ptrs.y);
  std::vector<int32_t> acc(s.c);
  std::vector<int8_t> mid(s.c);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oy = 0; oy < s.ho; ++oy)
      for (int64_t ox = 0; ox < s.wo; ++ox) {
        std::copy(dw_bias, dw_bias + s.c, acc.begin());
        add_depthwise_pixel(s, x, dw, n, oy, ox, acc.data());
        for (int64_t c = 0; c < s.c; ++c)
          mid[c] = int8_t(requantize(acc[c], call.ptrs.dw_multiplier[c], e.dw_qmin, e.dw_qmax));
        requantized_pixel(mid.data(), s.c, pw, pw_bias, call.ptrs.pw_multiplier, s.cout, e.pw_qmin, e.pw_qmax,
                          y + ((n * s.ho + oy) * s.wo + ox) * s.cout);
      }
}

ffi::Error dw_pw_int8_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias,
                               ffi::AnyBuffer dw_multiplier, ffi::AnyBuffer pw_kernel, ffi::AnyBuffer pw_bias,
                               ffi::AnyBuffer pw_multiplier, ffi::Result<ffi::AnyBuffer> y, DwPwInt8Attrs attrs) {
  DwPwCall call;
  if (ffi::Error err = decode_dw_pw_int8(x, dw_kernel, dw_bias, dw_multiplier, pw_kernel, pw_bias, pw_multiplier, y,
                                         attrs, &call);
      err.failure())
    return err;
  dw_pw_int8_cpu(call);
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmDwPwInt8Cpu, jax_fcm::dw_pw_int8_cpu_impl,
                              jax_fcm::bind_dw_pw_int8(xla::ffi::Ffi::Bind()));
