// CPU handler of pw_dw, with the CUDA kernel's rounding: the expanded tensor
// rounded to the storage type (as the kernel keeps it in shared memory), the
// depthwise result + bias + activation rounded once.
#include <vector>

#include "depthwise_cpu_core.h"
#include "pointwise_cpu_core.h"
#include "pw_dw_ffi.h"
#include "storage_dispatch.h"

namespace jax_fcm {
namespace {

template <typename Storage>
void pw_dw_cpu(const MbconvCall& call) {
  const MbconvShape& ms = call.shape;
  const DwPwShape& s = ms.inner;
  DwPwShape image = s;  // one image at a time: its expanded tensor, then the depthwise conv over it
  image.n = 1;
  const std::vector<float> we = to_floats<Storage>(call.ptrs.expand_kernel, ms.cin * s.c);
  const std::vector<float> be = to_floats<Storage>(call.ptrs.expand_bias, s.c);
  const std::vector<float> taps = to_floats<Storage>(call.ptrs.dw_kernel, s.kernel * s.kernel * s.c);
  const std::vector<float> bd = to_floats<Storage>(call.ptrs.dw_bias, s.c);
  const auto* x = static_cast<const Storage*>(call.ptrs.x);
  auto* y = static_cast<Storage*>(call.ptrs.y);
  std::vector<Storage> expanded(s.h * s.w * s.c);
  for (int64_t n = 0; n < s.n; ++n) {
    pointwise_rows_cpu(x + n * s.h * s.w * ms.cin, s.h * s.w, ms.cin, s.c, we.data(), be.data(),
                       call.epilogue.expand_activation, expanded.data());
    depthwise_image_cpu(image, expanded.data(), taps.data(), bd.data(), call.epilogue.dw_activation, 0,
                        y + n * s.ho * s.wo * s.c);
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
