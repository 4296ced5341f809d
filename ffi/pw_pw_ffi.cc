#include "pw_pw_ffi.h"

#include <string>

#include "activations.h"
#include "buffer_checks.h"

namespace jax_fcm {
namespace {

ffi::Error bad(const std::string& what) { return ffi::Error::InvalidArgument("jax_fcm pw_pw: " + what); }

}  // namespace

std::string set_pw_pw_shape(int64_t pixels, int64_t cin, int64_t hidden, int64_t cout, bool cuda, PwPwCall* call) {
  PwPwShape& s = call->shape;
  s.m = pixels, s.cin = cin, s.hidden = hidden, s.cout = cout;
  if (cin < 1 || hidden < 1 || cout < 1) return "Cin, hidden and Cout must be >= 1";
  if (cuda && !pw_pw_shape_supported(call->type, s))
    return "the CUDA kernel takes Cin <= " + std::to_string(pw_pw_max_cin(call->type)) +
           " and hidden*Cout, Cin*hidden, 128*Cout below 2**31 (32-bit offsets)";
  return "";
}

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
  if (std::string err = set_pw_pw_shape(n * h * w, cin, hidden, cout, cuda, call); !err.empty()) return bad(err);
  call->act1 = static_cast<int>(a.pw1_activation);
  call->act2 = static_cast<int>(a.pw2_activation);
  call->ptrs = PwPwPointers{x.untyped_data(),  w1.untyped_data(), b1.untyped_data(),
                            w2.untyped_data(), b2.untyped_data(), y->untyped_data()};
  return ffi::Error::Success();
}

ffi::Error decode_convnext_mlp(ffi::AnyBuffer x, ffi::AnyBuffer residual, ffi::AnyBuffer ln_scale,
                               ffi::AnyBuffer ln_bias, ffi::AnyBuffer w1, ffi::AnyBuffer b1, ffi::AnyBuffer w2,
                               ffi::AnyBuffer b2, ffi::AnyBuffer layer_scale, ffi::Result<ffi::AnyBuffer>& y,
                               const ConvNextMlpAttrs& a, bool cuda, PwPwCall* call) {
  auto bad_block = [](const std::string& what) {
    return ffi::Error::InvalidArgument("jax_fcm convnext_mlp: " + what);
  };
  const PwPwAttrs pw_attrs{a.pw1_activation, kActNone};
  if (ffi::Error err = decode_pw_pw(x, w1, b1, w2, b2, y, pw_attrs, cuda, call); err.failure()) return err;
  const PwPwShape& s = call->shape;
  if (s.cout != s.cin)
    return bad_block("pw2_kernel must map back to C=" + std::to_string(s.cin) + " channels, got " + dims_str(w2));
  for (ffi::AnyBuffer b : {residual, ln_scale, ln_bias, layer_scale})
    if (b.element_type() != x.element_type()) return bad_block("every operand must share x's dtype");
  const auto xd = x.dimensions();
  if (!has_dims(residual, {xd[0], xd[1], xd[2], xd[3]}))
    return bad_block("residual must be x's shape " + dims_str(x) + ", got " + dims_str(residual));
  for (ffi::AnyBuffer b : {ln_scale, ln_bias, layer_scale})
    if (!has_dims(b, {s.cin})) return bad_block("ln_scale, ln_bias and layer_scale must be (C,), got " + dims_str(b));
  if (!(a.eps > 0.f) || a.eps > 1e30f) return bad_block("eps must be a positive finite number");
  if (cuda && (call->type == ElementType::kF32 || s.cin % 8 != 0 || s.hidden % 8 != 0))
    return bad_block("the CUDA kernel takes bfloat16 or float16 with C and hidden multiples of 8 (Hopper wgmma)");
  call->ptrs.block = PwPwBlockEnds{ln_scale.untyped_data(), ln_bias.untyped_data(), layer_scale.untyped_data(),
                                   residual.untyped_data(), a.eps};
  return ffi::Error::Success();
}

}  // namespace jax_fcm
