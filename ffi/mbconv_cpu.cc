// CPU handler of the fused MBConv op, with the CUDA kernel's rounding: the
// expanded tensor and the depthwise result are rounded to the storage type,
// the projection + bias + residual is rounded once.
#include <vector>

#include "dw_pw_cpu_core.h"
#include "mbconv_ffi.h"
#include "pointwise_cpu_core.h"
#include "storage_dispatch.h"

namespace jax_fcm {
namespace {

template <typename Storage>
void mbconv_cpu(const MbconvCall& call) {
  using C = Conv<Storage>;
  const MbconvShape& ms = call.shape;
  const DwPwShape& s = ms.inner;
  const int act = call.epilogue.expand_activation;  // the block's activation, after the depthwise conv too
  const std::vector<float> we = to_floats<Storage>(call.ptrs.expand_kernel, ms.cin * s.c);
  const std::vector<float> be = to_floats<Storage>(call.ptrs.expand_bias, s.c);
  const DwPwWeightsF32 wt = DwPwWeightsF32::read<Storage>(s, call.ptrs.dw_kernel, call.ptrs.dw_bias,
                                                          call.ptrs.project_kernel, call.ptrs.project_bias);
  const auto* x = static_cast<const Storage*>(call.ptrs.x);
  auto* y = static_cast<Storage*>(call.ptrs.y);

  // One image at a time: its expanded tensor, then the DW -> PW loop over it.
  DwPwShape image = s;
  image.n = 1;
  std::vector<Storage> expanded(s.h * s.w * s.c);
  for (int64_t n = 0; n < s.n; ++n) {
    const Storage* x_image = x + n * s.h * s.w * ms.cin;
    pointwise_rows_cpu(x_image, s.h * s.w, ms.cin, s.c, we.data(), be.data(), act, expanded.data());
    depthwise_pointwise_cpu(image, expanded.data(), wt, act, [&](int64_t, int64_t oy, int64_t ox, const float* out) {
      Storage* dst = y + ((n * s.ho + oy) * s.wo + ox) * s.cout;
      const Storage* res = x_image + (oy * s.w + ox) * ms.cin;
      for (int64_t co = 0; co < s.cout; ++co)
        dst[co] = C::from_float(out[co] + (call.epilogue.residual ? C::to_float(res[co]) : 0.f));
    });
  }
}

ffi::Error mbconv_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer expand_kernel, ffi::AnyBuffer expand_bias,
                           ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias, ffi::AnyBuffer project_kernel,
                           ffi::AnyBuffer project_bias, ffi::Result<ffi::AnyBuffer> y, MbconvAttrs attrs) {
  MbconvCall call;
  if (ffi::Error err = decode_mbconv(x, expand_kernel, expand_bias, dw_kernel, dw_bias, project_kernel, project_bias,
                                     y, attrs, &call);
      err.failure())
    return err;
  with_storage_type(call.type, [&](auto tag) { mbconv_cpu<typename decltype(tag)::type>(call); });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmMbconvCpu, jax_fcm::mbconv_cpu_impl, jax_fcm::bind_mbconv(xla::ffi::Ffi::Bind()));
