// CPU handler of the fused PW -> PW op. Same contract as the CUDA kernel:
// fp32 accumulation, the intermediate rounded to the input dtype after b1 and
// act1 (the CUDA kernel rounds it there to feed the second MMA), one rounding
// of the output (full fp32 products for float32: the CPU has no TF32).
#include <algorithm>
#include <vector>

#include "activations.h"
#include "float16_convert.h"
#include "pointwise_cpu_core.h"
#include "pw_pw_ffi.h"
#include "storage_dispatch.h"

namespace jax_fcm {
namespace {

template <typename Storage>
void pw_pw_cpu(const PwPwCall& call) {
  using Cv = Conv<Storage>;
  const PwPwShape& s = call.shape;
  const std::vector<float> w1 = to_floats<Storage>(call.ptrs.w1, s.cin * s.hidden);
  const std::vector<float> b1 = to_floats<Storage>(call.ptrs.b1, s.hidden);
  const std::vector<float> w2 = to_floats<Storage>(call.ptrs.w2, s.hidden * s.cout);
  const std::vector<float> b2 = to_floats<Storage>(call.ptrs.b2, s.cout);
  const auto* x = static_cast<const Storage*>(call.ptrs.x);
  auto* y = static_cast<Storage*>(call.ptrs.y);
  std::vector<float> a(s.cin), mid(s.hidden), out(s.cout);
  for (int64_t m = 0; m < s.m; ++m) {
    for (int64_t c = 0; c < s.cin; ++c) a[c] = Cv::to_float(x[m * s.cin + c]);
    std::copy(b1.begin(), b1.end(), mid.begin());
    add_pointwise_pixel(a.data(), w1.data(), s.cin, s.hidden, mid.data());
    for (float& v : mid) v = Cv::to_float(Cv::from_float(apply_activation(v, call.act1)));
    std::copy(b2.begin(), b2.end(), out.begin());
    add_pointwise_pixel(mid.data(), w2.data(), s.hidden, s.cout, out.data());
    Storage* dst = y + m * s.cout;
    for (int64_t co = 0; co < s.cout; ++co) dst[co] = Cv::from_float(apply_activation(out[co], call.act2));
  }
}

ffi::Error pw_pw_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer w1, ffi::AnyBuffer b1, ffi::AnyBuffer w2,
                          ffi::AnyBuffer b2, ffi::Result<ffi::AnyBuffer> y, PwPwAttrs attrs) {
  PwPwCall call;
  if (ffi::Error err = decode_pw_pw(x, w1, b1, w2, b2, y, attrs, /*cuda=*/false, &call); err.failure()) return err;
  with_storage_type(call.type, [&](auto tag) { pw_pw_cpu<typename decltype(tag)::type>(call); });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmPwPwCpu, jax_fcm::pw_pw_cpu_impl, jax_fcm::bind_pw_pw(xla::ffi::Ffi::Bind()));
