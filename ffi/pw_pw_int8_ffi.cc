#include "pw_pw_int8_ffi.h"

#include <string>

#include "buffer_checks.h"

namespace jax_fcm {
namespace {

ffi::Error bad(const std::string& what) { return ffi::Error::InvalidArgument("jax_fcm pw_pw_int8: " + what); }

bool clamp_ok(int64_t lo, int64_t hi) { return -128 <= lo && lo <= hi && hi <= 127; }

}  // namespace

ffi::Error decode_pw_pw_int8(ffi::AnyBuffer x, ffi::AnyBuffer w1, ffi::AnyBuffer b1, ffi::AnyBuffer m1,
                             ffi::AnyBuffer w2, ffi::AnyBuffer b2, ffi::AnyBuffer m2, ffi::Result<ffi::AnyBuffer>& y,
                             const PwPwInt8Attrs& a, bool cuda, PwPwCall* call) {
  using ffi::DataType;
  for (ffi::AnyBuffer b : {x, w1, w2, ffi::AnyBuffer(*y)})
    if (b.element_type() != DataType::S8) return bad("x, the kernels and the result must be int8");
  if (b1.element_type() != DataType::S32 || b2.element_type() != DataType::S32) return bad("biases must be int32");
  if (m1.element_type() != DataType::F32 || m2.element_type() != DataType::F32)
    return bad("multipliers must be float32");
  if (x.dimensions().size() != 4) return bad("x must be NHWC (rank 4), got " + dims_str(x));
  const auto xd = x.dimensions();
  const int64_t n = xd[0], h = xd[1], w = xd[2], cin = xd[3];
  if (w1.dimensions().size() != 2 || w1.dimensions()[1] != cin)
    return bad("pw1_kernel must be (hidden, Cin=" + std::to_string(cin) + "), got " + dims_str(w1));
  const int64_t hidden = w1.dimensions()[0];
  if (w2.dimensions().size() != 2 || w2.dimensions()[1] != hidden)
    return bad("pw2_kernel must be (Cout, hidden=" + std::to_string(hidden) + "), got " + dims_str(w2));
  const int64_t cout = w2.dimensions()[0];
  if (!has_dims(b1, {hidden}) || !has_dims(m1, {hidden}))
    return bad("pw1_bias and pw1_multiplier must be (hidden,), got " + dims_str(b1) + " and " + dims_str(m1));
  if (!has_dims(b2, {cout}) || !has_dims(m2, {cout}))
    return bad("pw2_bias and pw2_multiplier must be (Cout,), got " + dims_str(b2) + " and " + dims_str(m2));
  if (!has_dims(*y, {n, h, w, cout})) return bad("result must be " + nhwc_str(n, h, w, cout) + ", got " + dims_str(*y));
  if (!clamp_ok(a.pw1_qmin, a.pw1_qmax) || !clamp_ok(a.pw2_qmin, a.pw2_qmax))
    return bad("clamp ranges must satisfy -128 <= qmin <= qmax <= 127");
  call->type = ElementType::kS8;
  if (std::string err = set_pw_pw_shape(n * h * w, cin, hidden, cout, cuda, call); !err.empty()) return bad(err);
  call->ptrs = PwPwPointers{x.untyped_data(),  w1.untyped_data(), b1.untyped_data(),
                            w2.untyped_data(), b2.untyped_data(), y->untyped_data()};
  call->ptrs.quant = PwPwQuant{static_cast<const float*>(m1.untyped_data()),
                               static_cast<const float*>(m2.untyped_data()), int(a.pw1_qmin), int(a.pw1_qmax),
                               int(a.pw2_qmin), int(a.pw2_qmax)};
  return ffi::Error::Success();
}

}  // namespace jax_fcm
