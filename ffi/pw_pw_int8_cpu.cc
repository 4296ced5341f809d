// CPU handler of the int8 fused PW -> PW op: the integer math of the CUDA
// kernel (int32 sums, requantize() of cuda_src/requantize.h), pixel by pixel.
#include <cstdint>
#include <vector>

#include "pw_pw_int8_ffi.h"
#include "requantize.h"

namespace jax_fcm {
namespace {

void pw_pw_int8_cpu(const PwPwCall& call) {
  const PwPwShape& s = call.shape;
  const PwPwQuant& q = call.ptrs.quant;
  const auto* x = static_cast<const int8_t*>(call.ptrs.x);
  auto* y = static_cast<int8_t*>(call.ptrs.y);
  std::vector<int8_t> mid(s.hidden);
  for (int64_t m = 0; m < s.m; ++m) {
    requantized_pixel(x + m * s.cin, s.cin, static_cast<const int8_t*>(call.ptrs.w1),
                      static_cast<const int32_t*>(call.ptrs.b1), q.m1, s.hidden, q.q1min, q.q1max, mid.data());
    requantized_pixel(mid.data(), s.hidden, static_cast<const int8_t*>(call.ptrs.w2),
                      static_cast<const int32_t*>(call.ptrs.b2), q.m2, s.cout, q.q2min, q.q2max, y + m * s.cout);
  }
}

ffi::Error pw_pw_int8_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer w1, ffi::AnyBuffer b1, ffi::AnyBuffer m1,
                               ffi::AnyBuffer w2, ffi::AnyBuffer b2, ffi::AnyBuffer m2,
                               ffi::Result<ffi::AnyBuffer> y, PwPwInt8Attrs attrs) {
  PwPwCall call;
  if (ffi::Error err = decode_pw_pw_int8(x, w1, b1, m1, w2, b2, m2, y, attrs, /*cuda=*/false, &call); err.failure())
    return err;
  pw_pw_int8_cpu(call);
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmPwPwInt8Cpu, jax_fcm::pw_pw_int8_cpu_impl,
                              jax_fcm::bind_pw_pw_int8(xla::ffi::Ffi::Bind()));
