// CPU handler of pw_dw, with the CUDA kernel's rounding: the expanded tensor
// rounded to the storage type (as the kernel keeps it in shared memory), the
// depthwise result + bias + activation rounded once.
#include <algorithm>
#include <vector>

#include "activations.h"
#include "depthwise_cpu_core.h"
#include "pw_dw_ffi.h"
#include "storage_dispatch.h"

namespace jax_fcm {
namespace {

template <typename Storage>
void pw_dw_cpu(const MbconvCall& call) {
  using C = Conv<Storage>;
  const MbconvShape& ms = call.shape;
  DwPwShape image = ms.inner;  // one image at a time: its expanded tensor, then the depthwise conv over it
  image.n = 1;
  const DwPwShape& s = ms.inner;
  const std::vector<float> we = to_floats<Storage>(call.ptrs.expand_kernel, ms.cin * s.c);
  const std::vector<float> be = to_floats<Storage>(call.ptrs.expand_bias, s.c);
  const std::vector<float> taps = to_floats<Storage>(call.ptrs.dw_kernel, s.kernel * s.kernel * s.c);
  const std::vector<float> bd = to_floats<Storage>(call.ptrs.dw_bias, s.c);
  const auto* x = static_cast<const Storage*>(call.ptrs.x);
  auto* y = static_cast<Storage*>(call.ptrs.y);
  std::vector<Storage> expanded(s.h * s.w * s.c);
  std::vector<float> acc(s.c);
  for (int64_t n = 0; n < s.n; ++n) {
    const Storage* x_image = x + n * s.h * s.w * ms.cin;
    for (int64_t pix = 0; pix < s.h * s.w; ++pix) {
      std::copy(be.begin(), be.end(), acc.begin());
      for (int64_t ci = 0; ci < ms.cin; ++ci) {
        const float v = C::to_float(x_image[pix * ms.cin + ci]);
        const float* w = &we[ci * s.c];
        for (int64_t c = 0; c < s.c; ++c) acc[c] += v * w[c];
      }
      for (int64_t c = 0; c < s.c; ++c)
        expanded[pix * s.c + c] = C::from_float(apply_activation(acc[c], call.epilogue.expand_activation));
    }
    for (int64_t oy = 0; oy < s.ho; ++oy)
      for (int64_t ox = 0; ox < s.wo; ++ox) {
        std::copy(bd.begin(), bd.end(), acc.begin());
        add_depthwise_pixel(image, expanded.data(), taps.data(), 0, oy, ox, acc.data());
        Storage* dst = y + ((n * s.ho + oy) * s.wo + ox) * s.c;
        for (int64_t c = 0; c < s.c; ++c) dst[c] = C::from_float(apply_activation(acc[c], call.epilogue.dw_activation));
      }
  }
}

ffi::Error pw_dw_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer pw_kernel, ffi::AnyBuffer pw_bias, ffi::AnyBuffer dw_kernel,
                          ffi::AnyBuffer dw_bias, ffi::Result<ffi::AnyBuffer> y, PwDwAttrs attrs) {
  MbconvCall call;
  if (ffi::Error err = decode_pw_dw(x, pw_kernel, pw_bias, dw_kernel, dw_bias, y, attrs, &call); err.failure())
    return err;
  with_storage_type(call.type, [&](auto tag) { pw_dw_cpu<typename decltype(tag)::type>(call); });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmPwDwCpu, jax_fcm::pw_dw_cpu_impl, jax_fcm::bind_pw_dw(xla::ffi::Ffi::Bind()));
