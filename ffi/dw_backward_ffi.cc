#include "dw_backward_ffi.h"

#include <string>

#include "buffer_checks.h"

namespace jax_fcm {
namespace {

ffi::Error bad(const std::string& what) { return ffi::Error::InvalidArgument("jax_fcm dw_backward: " + what); }

}  // namespace

ffi::Error decode_dw_backward(ffi::AnyBuffer x, ffi::AnyBuffer dy, ffi::AnyBuffer kernel,
                              ffi::Result<ffi::AnyBuffer>& dx, ffi::Result<ffi::AnyBuffer>& dw_partials,
                              const DwBackwardAttrs& a, DwBackwardCall* call) {
  if (!kernel_element_type(x.element_type(), &call->type)) return bad("x must be float32, bfloat16 or float16");
  for (ffi::AnyBuffer b : {dy, kernel, ffi::AnyBuffer(*dx)})
    if (b.element_type() != x.element_type()) return bad("x, dy, kernel and dx must share x's dtype");
  if (dw_partials->element_type() != ffi::DataType::F32) return bad("dw_partials must be float32");
  DwBackwardShape& s = call->shape;
  if (const std::string err = check_depthwise_operands(x, kernel, &s); !err.empty()) return bad(err);
  if (a.stride != 1 && a.stride != 2) return bad("stride must be 1 or 2");
  for (int64_t pad : {a.pad_top, a.pad_bottom, a.pad_left, a.pad_right})
    if (pad < 0 || pad >= s.kernel) return bad("padding must be between 0 and k - 1 on every side");
  s.stride = a.stride;
  s.pad_top = a.pad_top, s.pad_bottom = a.pad_bottom, s.pad_left = a.pad_left, s.pad_right = a.pad_right;
  s.ho = padded_output_size(s.h, a.pad_top, a.pad_bottom, s.kernel, s.stride);
  s.wo = padded_output_size(s.w, a.pad_left, a.pad_right, s.kernel, s.stride);
  if (s.ho == 0 || s.wo == 0) return bad("the padded input is smaller than the kernel (no output pixels)");
  if (!has_dims(dy, {s.n, s.ho, s.wo, s.c}))
    return bad("dy must be " + nhwc_str(s.n, s.ho, s.wo, s.c) + ", got " + dims_str(dy));
  if (!has_dims(*dx, {s.n, s.h, s.w, s.c}))
    return bad("dx must be " + nhwc_str(s.n, s.h, s.w, s.c) + ", got " + dims_str(*dx));
  const auto pd = dw_partials->dimensions();
  if (pd.size() != 4 || pd[0] != s.n || pd[1] < 1 || pd[2] != s.kernel * s.kernel + 1 || pd[3] != s.c)
    return bad("dw_partials must be (N, groups >= 1, k*k + 1, C), got " + dims_str(*dw_partials));
  s.groups = pd[1];
  if (!dw_backward_shape_supported(s))
    return bad("an image has 2**31 elements or more (the CUDA kernel indexes with 32-bit offsets)");
  call->ptrs = DwBackwardPointers{x.untyped_data(), dy.untyped_data(), kernel.untyped_data(), dx->untyped_data(),
                                  static_cast<float*>(dw_partials->untyped_data())};
  return ffi::Error::Success();
}

}  // namespace jax_fcm
