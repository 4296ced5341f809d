#include "pw_dw_ffi.h"

#include <string>

#include "activations.h"
#include "buffer_checks.h"

namespace jax_fcm {

ffi::Error decode_pw_dw(ffi::AnyBuffer x, ffi::AnyBuffer pw_kernel, ffi::AnyBuffer pw_bias, ffi::AnyBuffer dw_kernel,
                        ffi::AnyBuffer dw_bias, ffi::Result<ffi::AnyBuffer>& y, const PwDwAttrs& a,
                        MbconvCall* call) {
  const WindowAttrs window{a.stride, a.pad_top, a.pad_bottom, a.pad_left, a.pad_right, a.pw_math};
  if (ffi::Error err = decode_expand_depthwise("pw_dw", x, pw_kernel, pw_bias, dw_kernel, dw_bias, window, call);
      err.failure())
    return err;
  const auto bad = [](const std::string& what) { return ffi::Error::InvalidArgument("jax_fcm pw_dw: " + what); };
  DwPwShape& s = call->shape.inner;
  s.cout = s.c;
  if (y->element_type() != x.element_type()) return bad("all operands and the result must share x's dtype");
  if (!has_dims(*y, {s.n, s.ho, s.wo, s.c}))
    return bad("result must be " + nhwc_str(s.n, s.ho, s.wo, s.c) + ", got " + dims_str(*y));
  for (int64_t act : {a.pw_activation, a.dw_activation})
    if (act < 0 || act >= kActCount) return bad("unknown activation code");
  call->epilogue = MbconvEpilogue{static_cast<int>(a.pw_activation), static_cast<int>(a.dw_activation), false};
  call->ptrs.y = y->untyped_data();
  return ffi::Error::Success();
}

}  // namespace jax_fcm
