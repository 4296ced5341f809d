#include "dw_pw_ffi.h"

#include <string>

#include "activations.h"
#include "buffer_checks.h"

namespace jax_fcm {
namespace {

ffi::Error bad(const std::string& what) { return ffi::Error::InvalidArgument("jax_fcm dw_pw: " + what); }

}  // namespace

ffi::Error decode_dw_pw(ffi::AnyBuffer x, ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias, ffi::AnyBuffer pw_kernel,
                        ffi::AnyBuffer pw_bias, ffi::Result<ffi::AnyBuffer>& y, const DwPwAttrs& a,
                        DwPwCall* call) {
  if (!kernel_element_type(x.element_type(), &call->type)) return bad("x must be float32, bfloat16 or float16");
  for (ffi::AnyBuffer b : {dw_kernel, dw_bias, pw_kernel, pw_bias, ffi::AnyBuffer(*y)})
    if (b.element_type() != x.element_type()) return bad("all operands and the result must share x's dtype");
  DwPwShape& s = call->shape;
  if (std::string err = check_depthwise_operands(x, dw_kernel, &s, "dw_kernel"); !err.empty()) return bad(err);
  if (pw_kernel.dimensions().size() != 4) return bad("pw_kernel must be (1, 1, C, Cout), got " + dims_str(pw_kernel));
  s.cout = pw_kernel.dimensions()[3];
  if (!has_dims(pw_kernel, {1, 1, s.c, s.cout}))
    return bad("pw_kernel must be (1, 1, C=" + std::to_string(s.c) + ", Cout), got " + dims_str(pw_kernel));
  if (!has_dims(dw_bias, {s.c})) return bad("dw_bias must be (C,), got " + dims_str(dw_bias));
  if (!has_dims(pw_bias, {s.cout})) return bad("pw_bias must be (Cout,), got " + dims_str(pw_bias));
  if (std::string err = decode_window_and_tile(a, *y, call); !err.empty()) return bad(err);
  if (a.dw_activation < 0 || a.dw_activation >= kActCount || a.pw_activation < 0 || a.pw_activation >= kActCount)
    return bad("unknown activation code");
  if (a.pw_math != kPwMathTf32 && a.pw_math != kPwMathFp32) return bad("pw_math must be 0 (tf32) or 1 (fp32)");
  call->math = static_cast<PwMath>(a.pw_math);
  call->epilogue = DwPwEpilogue{static_cast<int>(a.dw_activation), static_cast<int>(a.pw_activation)};
  call->ptrs = DwPwPointers{x.untyped_data(),  dw_kernel.untyped_data(), dw_bias.untyped_data(),
                            pw_kernel.untyped_data(), pw_bias.untyped_data(), y->untyped_data()};
  return ffi::Error::Success();
}

}  // namespace jax_fcm
