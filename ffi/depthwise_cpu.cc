// CPU handler of the standalone depthwise convolution. Same contract as the
// CUDA kernel: fp32 accumulation, bias and activation, one rounding.
#include <vector>

#include "depthwise_cpu_core.h"
#include "depthwise_ffi.h"
#include "storage_dispatch.h"

namespace jax_fcm {
namespace {

template <typename Storage>
void depthwise_cpu(const DepthwiseCall& call) {
  const DepthwiseShape& s = call.shape;
  const std::vector<float> taps = to_floats<Storage>(call.ptrs.kernel, s.kernel * s.kernel * s.c);
  const std::vector<float> bias = to_floats<Storage>(call.ptrs.bias, s.c);
  const auto* x = static_cast<const Storage*>(call.ptrs.x);
  auto* y = static_cast<Storage*>(call.ptrs.y);
  for (int64_t n = 0; n < s.n; ++n)
    depthwise_image_cpu(s, x, taps.data(), bias.data(), call.activation, n, y + n * s.ho * s.wo * s.c);
}

ffi::Error depthwise_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::AnyBuffer bias,
                              ffi::Result<ffi::AnyBuffer> y, DepthwiseAttrs attrs) {
  DepthwiseCall call;
  if (ffi::Error err = decode_depthwise(x, kernel, bias, y, attrs, &call); err.failure()) return err;
  with_storage_type(call.type, [&](auto tag) { depthwise_cpu<typename decltype(tag)::type>(call); });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmDepthwiseCpu, jax_fcm::depthwise_cpu_impl,
                              jax_fcm::bind_depthwise(xla::ffi::Ffi::Bind()));
