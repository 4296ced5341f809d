#include "dw_pw_int8_ffi.h"

#include <string>

#include "buffer_checks.h"

namespace jax_fcm {
namespace {

ffi::Error bad(const std::string& what) { return ffi::Error::InvalidArgument("jax_fcm dw_pw_int8: " + what); }

bool has_type(ffi::AnyBuffer b, ffi::DataType type) { return b.element_type() == type; }

bool clamp_ok(int64_t lo, int64_t hi) { return -128 <= lo && lo <= hi && hi <= 127; }

}  // namespace

ffi::Error decode_dw_pw_int8(ffi::AnyBuffer x, ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias,
                             ffi::AnyBuffer dw_multiplier, ffi::AnyBuffer pw_kernel, ffi::AnyBuffer pw_bias,
                             ffi::AnyBuffer pw_multiplier, ffi::Result<ffi::AnyBuffer>& y, const DwPwInt8Attrs& a,
                             DwPwCall* call) {
  using ffi::DataType;
  for (ffi::AnyBuffer b : {x, dw_kernel, pw_kernel, ffi::AnyBuffer(*y)})
    if (!has_type(b, DataType::S8)) return bad("x, the kernels and the result must be int8");
  if (!has_type(dw_bias, DataType::S32) || !has_type(pw_bias, DataType::S32)) return bad("biases must be int32");
  if (!has_type(dw_multiplier, DataType::F32) || !has_type(pw_multiplier, DataType::F32))
    return bad("multipliers must be float32");
  DwPwShape& s = call->shape;
  if (std::string err = check_depthwise_operands(x, dw_kernel, &s, "dw_kernel"); !err.empty()) return bad(err);
  if (pw_kernel.dimensions().size() != 2 || pw_kernel.dimensions()[1] != s.c)
    return bad("pw_kernel must be (Cout, C=" + std::to_string(s.c) + "), got " + dims_str(pw_kernel));
  s.cout = pw_kernel.dimensions()[0];
  if (!has_dims(dw_bias, {s.c}) || !has_dims(dw_multiplier, {s.c}))
    return bad("dw_bias and dw_multiplier must be (C,), got " + dims_str(dw_bias) + " and " + dims_str(dw_multiplier));
  if (!has_dims(pw_bias, {s.cout}) || !has_dims(pw_multiplier, {s.cout}))
    return bad("pw_bias and pw_multiplier must be (Cout,), got " + dims_str(pw_bias) + " and " +
               dims_str(pw_multiplier));
  if (std::string err = decode_window_and_tile(a, *y, call); !err.empty()) return bad(err);
  if (!clamp_ok(a.dw_qmin, a.dw_qmax) || !clamp_ok(a.pw_qmin, a.pw_qmax))
    return bad("clamp ranges must satisfy -128 <= qmin <= qmax <= 127");
  call->type = ElementType::kS8;
  DwPwEpilogue& e = call->epilogue;
  e.dw_qmin = int(a.dw_qmin), e.dw_qmax = int(a.dw_qmax), e.pw_qmin = int(a.pw_qmin), e.pw_qmax = int(a.pw_qmax);
  call->ptrs = DwPwPointers{x.untyped_data(),       dw_kernel.untyped_data(), dw_bias.untyped_data(),
                            pw_kernel.untyped_data(), pw_bias.untyped_data(),  y->untyped_data(),
                            static_cast<const float*>(dw_multiplier.untyped_data()),
                            static_cast<const float*>(pw_multiplier.untyped_data())};
  return ffi::Error::Success();
}

}  // namespace jax_fcm
