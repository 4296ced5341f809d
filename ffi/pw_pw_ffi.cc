#include "pw_pw_ffi.h"

#include <string>

#include "activations.h"
#include "buffer_checks.h"

namespace jax_fcm {
namespace {

ffi::Error bad(const std::string& what) { return ffi::Error::InvalidArgument("jax_fcm pw_pw: " + what); }

}  // namespace

ffi::Error decode_pw_pw(ffi::AnyBuffer x, ffi::AnyBuffer w1, ffi::AnyBuffer b1, ffi::AnyBuffer w2,
                        ffi::AnyBuffer b2, ffi::Result<ffi::AnyBuffer>& y, const PwPwAttrs& a, bool cuda,
                        PwPwCall* call) {
  if (!kernel_element_type(x.element_type(), &call->type)) return bad("x must be float32, bfloat16 or float16");
  for (ffi::AnyBuffer b : {w1, b1, w2, b2, ffi::AnyBuffer(*y)})
    if (b.element_type() != x.element_type()) return bad("weights, biases and the result must share x's dtype");
  if (x.dimensions().size() != 4) return bad("x must be NHWC (rank 4), got " + dims_str(x));
  const auto xd = x.dimensions();
  const int64_t n = xd[0], h = xd[1], w = xd[2], cin = xd[3];
  if (w1.dimensions().size() != 4 || w2.dimensions().size() != 4)
    return bad("pw1_kernel and pw2_kernel must be (1, 1, in, out), got " + dims_str(w1) + " and " + dims_str(w2));
  const int64_t hidden = w1.dimensions()[3], cout = w2.dimensions()[3];
  if (!has_dims(w1, {1, 1, cin, hidden}))
    return bad("pw1_kernel must be (1, 1, Cin=" + std::to_string(cin) + ", hidden), got " + dims_str(w1));
  if (!has_dims(w2, {1, 1, hidden, cout}))
    return bad("pw2_kernel must be (1, 1, hidden=" + std::to_string(hidden) + ", Cout), got " + dims_str(w2));
  if (!has_dims(b1, {hidden})) return bad("pw1_bias must be (hidden,), got " + dims_str(b1));
  if (!has_dims(b2, {cout})) return bad("pw2_bias must be (Cout,), got " + dims_str(b2));
  if (!has_dims(*y, {n, h, w, cout})) return bad("result must be " + nhwc_str(n, h, w, cout) + ", got " + dims_str(*y));
  for (int64_t act : {a.pw1_activation, a.pw2_activation})
    if (act < 0 || act >= kActCount) return bad("unknown activation code");
  PwPwShape& s = call->shape;
  s.m = n * h * w, s.cin = cin, s.hidden = hidden, s.cout = cout;
  if (cin < 1 || hidden < 1 || cout < 1) return bad("Cin, hidden and Cout must be >= 1");
  if (cuda && !pw_pw_shape_supported(call->type, s))
    return bad("the CUDA kernel takes Cin <= " + std::to_string(pw_pw_max_cin(call->type)) +
               " and hidden*Cout, Cin*hidden, 128*Cout below 2**31 (32-bit offsets)");
  call->act1 = static_cast<int>(a.pw1_activation);
  call->act2 = static_cast<int>(a.pw2_activation);
  call->ptrs = PwPwPointers{x.untyped_data(),  w1.untyped_data(), b1.untyped_data(),
                            w2.untyped_data(), b2.untyped_data(), y->untyped_data()};
  return ffi::Error::Success();
}

}  // namespace jax_fcm
