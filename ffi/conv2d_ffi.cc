#include "conv2d_ffi.h"

#include <string>

#include "activations.h"
#include "buffer_checks.h"

namespace jax_fcm {
namespace {

ffi::Error bad(const std::string& what) { return ffi::Error::InvalidArgument("jax_fcm conv2d: " + what); }

}  // namespace

ffi::Error decode_conv2d(ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::AnyBuffer bias, ffi::Result<ffi::AnyBuffer>& y,
                         const Conv2dAttrs& a, Conv2dCall* call) {
  if (!kernel_element_type(x.element_type(), &call->type)) return bad("x must be float32, bfloat16 or float16");
  for (ffi::AnyBuffer b : {kernel, bias, ffi::AnyBuffer(*y)})
    if (b.element_type() != x.element_type()) return bad("kernel, bias and the result must share x's dtype");
  if (x.dimensions().size() != 4) return bad("x must be NHWC (rank 4), got " + dims_str(x));
  if (kernel.dimensions().size() != 4) return bad("kernel must be (kh, kw, Cin, Cout), got " + dims_str(kernel));
  Conv2dShape& s = call->shape;
  const auto xd = x.dimensions(), kd = kernel.dimensions();
  s.n = xd[0], s.h = xd[1], s.w = xd[2], s.cin = xd[3];
  s.kh = kd[0], s.kw = kd[1], s.cout = kd[3];
  if (kd[2] != s.cin) return bad("kernel must be (kh, kw, Cin=" + std::to_string(s.cin) + ", Cout), got " + dims_str(kernel));
  if (!has_dims(bias, {s.cout})) return bad("bias must be (Cout,), got " + dims_str(bias));
  if (a.stride_h < 1 || a.stride_w < 1) return bad("strides must be >= 1");
  if (a.pad_top < 0 || a.pad_bottom < 0 || a.pad_left < 0 || a.pad_right < 0) return bad("padding must be >= 0");
  s.stride_h = a.stride_h, s.stride_w = a.stride_w, s.pad_top = a.pad_top, s.pad_left = a.pad_left;
  s.ho = padded_output_size(s.h, a.pad_top, a.pad_bottom, s.kh, s.stride_h);
  s.wo = padded_output_size(s.w, a.pad_left, a.pad_right, s.kw, s.stride_w);
  if (s.ho == 0 || s.wo == 0) return bad("the padded input is smaller than the kernel (no output pixels)");
  if (!has_dims(*y, {s.n, s.ho, s.wo, s.cout}))
    return bad("result must be " + nhwc_str(s.n, s.ho, s.wo, s.cout) + ", got " + dims_str(*y));
  if (a.activation < 0 || a.activation >= kActCount) return bad("unknown activation code");
  if (a.pw_math != kPwMathTf32 && a.pw_math != kPwMathFp32) return bad("pw_math must be 0 (tf32) or 1 (fp32)");
  if (!conv2d_shape_supported(s))
    return bad("sizes must be >= 1, and the input (with padding), kh*kw*Cin*Cout and 128*kh*kw*Cin below 2**31 "
               "elements (32-bit offsets)");
  call->math = static_cast<PwMath>(a.pw_math);
  call->activation = static_cast<int>(a.activation);
  call->ptrs = Conv2dPointers{x.untyped_data(), kernel.untyped_data(), bias.untyped_data(), y->untyped_data()};
  return ffi::Error::Success();
}

}  // namespace jax_fcm
