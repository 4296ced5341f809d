#include "pointwise_ffi.h"

#include <string>

#include "activations.h"
#include "buffer_checks.h"

namespace jax_fcm {
namespace {

ffi::Error bad(const std::string& what) { return ffi::Error::InvalidArgument("jax_fcm pointwise: " + what); }

}  // namespace

ffi::Error decode_pointwise(ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::AnyBuffer bias,
                            ffi::Result<ffi::AnyBuffer>& y, const PointwiseAttrs& a, PointwiseCall* call) {
  if (!kernel_element_type(x.element_type(), &call->type)) return bad("x must be float32, bfloat16 or float16");
  for (ffi::AnyBuffer b : {kernel, bias, ffi::AnyBuffer(*y)})
    if (b.element_type() != x.element_type()) return bad("kernel, bias and the result must share x's dtype");
  if (x.dimensions().size() != 4) return bad("x must be NHWC (rank 4), got " + dims_str(x));
  const auto xd = x.dimensions();
  const int64_t n = xd[0], h = xd[1], w = xd[2], cin = xd[3];
  if (kernel.dimensions().size() != 4) return bad("kernel must be (1, 1, Cin, Cout), got " + dims_str(kernel));
  const int64_t cout = kernel.dimensions()[3];
  if (!has_dims(kernel, {1, 1, cin, cout}))
    return bad("kernel must be (1, 1, Cin=" + std::to_string(cin) + ", Cout), got " + dims_str(kernel));
  if (!has_dims(bias, {cout})) return bad("bias must be (Cout,), got " + dims_str(bias));
  if (!has_dims(*y, {n, h, w, cout})) return bad("result must be " + nhwc_str(n, h, w, cout) + ", got " + dims_str(*y));
  if (a.activation < 0 || a.activation >= kActCount) return bad("unknown activation code");
  if (a.pw_math != kPwMathTf32 && a.pw_math != kPwMathFp32) return bad("pw_math must be 0 (tf32) or 1 (fp32)");
  PointwiseShape& s = call->shape;
  s.m = n * h * w, s.cin = cin, s.cout = cout;
  if (!pointwise_shape_supported(s))
    return bad("Cin and Cout must be >= 1, and Cin*Cout, 128*Cin and 128*Cout below 2**31 (32-bit offsets)");
  call->math = static_cast<PwMath>(a.pw_math);
  call->activation = static_cast<int>(a.activation);
  call->ptrs = PointwisePointers{x.untyped_data(), kernel.untyped_data(), bias.untyped_data(), y->untyped_data()};
  return ffi::Error::Success();
}

}  // namespace jax_fcm
