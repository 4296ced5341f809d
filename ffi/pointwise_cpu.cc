// CPU handler of the standalone pointwise convolution. Same contract as the
// CUDA kernel: fp32 accumulation, bias and activation, one rounding (full
// fp32 products for float32: the CPU has no TF32).
#include <algorithm>
#include <vector>

#include "activations.h"
#include "float16_convert.h"
#include "pointwise_cpu_core.h"
#include "pointwise_ffi.h"
#include "storage_dispatch.h"

namespace jax_fcm {
namespace {

template <typename Storage>
void pointwise_cpu(const PointwiseCall& call) {
  using Cv = Conv<Storage>;
  const PointwiseShape& s = call.shape;
  const std::vector<float> w = to_floats<Storage>(call.ptrs.kernel, s.cin * s.cout);
  const std::vector<float> bias = to_floats<Storage>(call.ptrs.bias, s.cout);
  const auto* x = static_cast<const Storage*>(call.ptrs.x);
  auto* y = static_cast<Storage*>(call.ptrs.y);
  std::vector<float> a(s.cin), out(s.cout);
  for (int64_t m = 0; m < s.m; ++m) {
    for (int64_t c = 0; c < s.cin; ++c) a[c] = Cv::to_float(x[m * s.cin + c]);
    std::copy(bias.begin(), bias.end(), out.begin());
    add_pointwise_pixel(a.data(), w.data(), s.cin, s.cout, out.data());
    Storage* dst = y + m * s.cout;
    for (int64_t co = 0; co < s.cout; ++co) dst[co] = Cv::from_float(apply_activation(out[co], call.activation));
  }
}

ffi::Error pointwise_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::AnyBuffer bias,
                              ffi::Result<ffi::AnyBuffer> y, PointwiseAttrs attrs) {
  PointwiseCall call;
  if (ffi::Error err = decode_pointwise(x, kernel, bias, y, attrs, &call); err.failure()) return err;
  with_storage_type(call.type, [&](auto tag) { pointwise_cpu<typename decltype(tag)::type>(call); });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmPointwiseCpu, jax_fcm::pointwise_cpu_impl,
                              jax_fcm::bind_pointwise(xla::ffi::Ffi::Bind()));
