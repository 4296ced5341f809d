#include "depthwise_ffi.h"

#include <string>

#include "activations.h"
#include "buffer_checks.h"

namespace jax_fcm {
namespace {

ffi::Error bad(const std::string& what) { return ffi::Error::InvalidArgument("jax_fcm depthwise: " + what); }

}  // namespace

ffi::Error decode_depthwise(ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::AnyBuffer bias,
                            ffi::Result<ffi::AnyBuffer>& y, const DepthwiseAttrs& a, DepthwiseCall* call) {
  if (!kernel_element_type(x.element_type(), &call->type)) return bad("x must be float32, bfloat16 or float16");
  for (ffi::AnyBuffer b : {kernel, bias, ffi::AnyBuffer(*y)})
    if (b.element_type() != x.element_type()) return bad("kernel, bias and the result must share x's dtype");
  DepthwiseShape& s = call->shape;
  if (const std::string err = check_depthwise_operands(x, kernel, &s); !err.empty()) return bad(err);
  if (!has_dims(bias, {s.c})) return bad("bias must be (C,), got " + dims_str(bias));
  if (a.stride != 1 && a.stride != 2) return bad("stride must be 1 or 2");
  if (a.pad_top < 0 || a.pad_bottom < 0 || a.pad_left < 0 || a.pad_right < 0) return bad("padding must be >= 0");
  s.stride = a.stride, s.pad_top = a.pad_top, s.pad_left = a.pad_left;
  s.ho = padded_output_size(s.h, a.pad_top, a.pad_bottom, s.kernel, s.stride);
  s.wo = padded_output_size(s.w, a.pad_left, a.pad_right, s.kernel, s.stride);
  if (s.ho == 0 || s.wo == 0) return bad("the padded input is smaller than the kernel (no output pixels)");
  if (!has_dims(*y, {s.n, s.ho, s.wo, s.c}))
    return bad("result must be " + nhwc_str(s.n, s.ho, s.wo, s.c) + ", got " + dims_str(*y));
  if (a.activation < 0 || a.activation >= kActCount) return bad("unknown activation code");
  if (!depthwise_shape_supported(s))
    return bad("an image has 2**31 elements or more (the CUDA kernel indexes with 32-bit offsets)");
  call->activation = static_cast<int>(a.activation);
  call->ptrs = DepthwisePointers{x.untyped_data(), kernel.untyped_data(), bias.untyped_data(), y->untyped_data()};
  return ffi::Error::Success();
}

}  // namespace jax_fcm
