#include "mbconv_ffi.h"

#include <string>

#include "activations.h"
#include "buffer_checks.h"

namespace jax_fcm {
namespace {

ffi::Error bad(const std::string& what) { return ffi::Error::InvalidArgument("jax_fcm mbconv: " + what); }

std::string str(int64_t v) { return std::to_string(v); }

}  // namespace

ffi::Error decode_expand_depthwise(const char* op, ffi::AnyBuffer x, ffi::AnyBuffer expand_kernel,
                                   ffi::AnyBuffer expand_bias, ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias,
                                   const WindowAttrs& a, MbconvCall* call) {
  const auto bad = [op](const std::string& what) {
    return ffi::Error::InvalidArgument(std::string("jax_fcm ") + op + ": " + what);
  };
  if (!kernel_element_type(x.element_type(), &call->type)) return bad("x must be float32, bfloat16 or float16");
  for (ffi::AnyBuffer b : {expand_kernel, expand_bias, dw_kernel, dw_bias})
    if (b.element_type() != x.element_type()) return bad("all operands and the result must share x's dtype");
  if (x.dimensions().size() != 4) return bad("x must be NHWC (rank 4), got " + dims_str(x));
  const auto xd = x.dimensions();
  MbconvShape& ms = call->shape;
  DwPwShape& s = ms.inner;
  s.n = xd[0], s.h = xd[1], s.w = xd[2], ms.cin = xd[3];
  if (expand_kernel.dimensions().size() != 4)
    return bad("expand_kernel must be (1, 1, Cin, Cmid), got " + dims_str(expand_kernel));
  s.c = expand_kernel.dimensions()[3];
  if (!has_dims(expand_kernel, {1, 1, ms.cin, s.c}))
    return bad("expand_kernel must be (1, 1, Cin=" + str(ms.cin) + ", Cmid), got " + dims_str(expand_kernel));
  if (!has_dims(expand_bias, {s.c})) return bad("expand_bias must be (Cmid,), got " + dims_str(expand_bias));
  if (dw_kernel.dimensions().size() != 4) return bad("dw_kernel must be (k, k, 1, Cmid), got " + dims_str(dw_kernel));
  s.kernel = dw_kernel.dimensions()[0];
  if (!has_dims(dw_kernel, {s.kernel, s.kernel, 1, s.c}))
    return bad("dw_kernel must be (k, k, 1, Cmid=" + str(s.c) + "), got " + dims_str(dw_kernel));
  if (s.kernel != 3 && s.kernel != 5 && s.kernel != 7) return bad("kernel size must be 3, 5 or 7");
  if (!has_dims(dw_bias, {s.c})) return bad("dw_bias must be (Cmid,), got " + dims_str(dw_bias));
  if (ms.cin < 1 || s.c < 1) return bad("channel counts must be positive");
  if (a.stride != 1 && a.stride != 2) return bad("stride must be 1 or 2");
  if (a.pad_top < 0 || a.pad_bottom < 0 || a.pad_left < 0 || a.pad_right < 0) return bad("padding must be >= 0");
  s.stride = a.stride, s.pad_top = a.pad_top, s.pad_left = a.pad_left;
  s.ho = padded_output_size(s.h, a.pad_top, a.pad_bottom, s.kernel, s.stride);
  s.wo = padded_output_size(s.w, a.pad_left, a.pad_right, s.kernel, s.stride);
  if (a.pw_math != kPwMathTf32 && a.pw_math != kPwMathFp32) return bad("pw_math must be 0 (tf32) or 1 (fp32)");
  call->math = static_cast<PwMath>(a.pw_math);
  call->ptrs.x = x.untyped_data();
  call->ptrs.expand_kernel = expand_kernel.untyped_data();
  call->ptrs.expand_bias = expand_bias.untyped_data();
  call->ptrs.dw_kernel = dw_kernel.untyped_data();
  call->ptrs.dw_bias = dw_bias.untyped_data();
  return ffi::Error::Success();
}

ffi::Error decode_mbconv(ffi::AnyBuffer x, ffi::AnyBuffer expand_kernel, ffi::AnyBuffer expand_bias,
                         ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias, ffi::AnyBuffer project_kernel,
                         ffi::AnyBuffer project_bias, ffi::Result<ffi::AnyBuffer>& y, const MbconvAttrs& a,
                         MbconvCall* call) {
  const WindowAttrs window{a.stride, a.pad_top, a.pad_bottom, a.pad_left, a.pad_right, a.pw_math};
  if (ffi::Error err = decode_expand_depthwise("mbconv", x, expand_kernel, expand_bias, dw_kernel, dw_bias, window,
                                               call);
      err.failure())
    return err;
  for (ffi::AnyBuffer b : {project_kernel, project_bias, ffi::AnyBuffer(*y)})
    if (b.element_type() != x.element_type()) return bad("all operands and the result must share x's dtype");
  MbconvShape& ms = call->shape;
  DwPwShape& s = ms.inner;
  if (project_kernel.dimensions().size() != 4)
    return bad("project_kernel must be (1, 1, Cmid, Cout), got " + dims_str(project_kernel));
  s.cout = project_kernel.dimensions()[3];
  if (!has_dims(project_kernel, {1, 1, s.c, s.cout}))
    return bad("project_kernel must be (1, 1, Cmid=" + str(s.c) + ", Cout), got " + dims_str(project_kernel));
  if (!has_dims(project_bias, {s.cout})) return bad("project_bias must be (Cout,), got " + dims_str(project_bias));
  if (s.cout < 1) return bad("channel counts must be positive");
  if (!has_dims(*y, {s.n, s.ho, s.wo, s.cout}))
    return bad("result must be " + nhwc_str(s.n, s.ho, s.wo, s.cout) + ", got " + dims_str(*y));
  if (a.activation < 0 || a.activation >= kActCount) return bad("unknown activation code");
  if (a.residual != 0 && a.residual != 1) return bad("residual must be 0 or 1");
  if (a.residual && (s.stride != 1 || ms.cin != s.cout || s.ho != s.h || s.wo != s.w))
    return bad("a residual needs stride 1, Cin == Cout and an output the size of the input");
  if (a.tile_n <= 0) return bad("tile_n must be positive");
  if (a.channel_splits != 1 && a.channel_splits != 2 && a.channel_splits != 4 && a.channel_splits != 8)
    return bad("channel_splits must be 1, 2, 4 or 8");
  call->tile_n = int(a.tile_n);
  call->channel_splits = int(a.channel_splits);
  call->epilogue = MbconvEpilogue{static_cast<int>(a.activation), static_cast<int>(a.activation), a.residual != 0};
  call->ptrs.project_kernel = project_kernel.untyped_data();
  call->ptrs.project_bias = project_bias.untyped_data();
  call->ptrs.y = y->untyped_data();
  return ffi::Error::Success();
}

}  // namespace jax_fcm
