// CPU handler of the dense conv2d. Same contract as the CUDA kernel: fp32
// accumulation, bias and activation, one rounding (full fp32 products for
// float32: the CPU has no TF32).
#include <algorithm>
#include <vector>

#include "activations.h"
#include "conv2d_ffi.h"
#include "pointwise_cpu_core.h"
#include "storage_dispatch.h"

namespace jax_fcm {
namespace {

template <typename Storage>
void conv2d_cpu(const Conv2dCall& call) {
  using Cv = Conv<Storage>;
  const Conv2dShape& s = call.shape;
  const std::vector<float> w = to_floats<Storage>(call.ptrs.kernel, s.kh * s.kw * s.cin * s.cout);
  const std::vector<float> bias = to_floats<Storage>(call.ptrs.bias, s.cout);
  const auto* x = static_cast<const Storage*>(call.ptrs.x);
  auto* y = static_cast<Storage*>(call.ptrs.y);
  std::vector<float> a(s.cin), out(s.cout);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oy = 0; oy < s.ho; ++oy)
      for (int64_t ox = 0; ox < s.wo; ++ox) {
        std::copy(bias.begin(), bias.end(), out.begin());
        // Each tap inside the image is a 1x1 conv of its input pixel with
        // that tap's [Cin][Cout] weights; padding taps add nothing.
        for (int64_t dy = 0; dy < s.kh; ++dy) {
          const int64_t iy = oy * s.stride_h - s.pad_top + dy;
          if (iy < 0 || iy >= s.h) continue;
          for (int64_t dx = 0; dx < s.kw; ++dx) {
            const int64_t ix = ox * s.stride_w - s.pad_left + dx;
            if (ix < 0 || ix >= s.w) continue;
            const Storage* pixel = x + ((n * s.h + iy) * s.w + ix) * s.cin;
            for (int64_t c = 0; c < s.cin; ++c) a[c] = Cv::to_float(pixel[c]);
            add_pointwise_pixel(a.data(), w.data() + (dy * s.kw + dx) * s.cin * s.cout, s.cin, s.cout, out.data());
          }
        }
        Storage* dst = y + ((n * s.ho + oy) * s.wo + ox) * s.cout;
        for (int64_t co = 0; co < s.cout; ++co) dst[co] = Cv::from_float(apply_activation(out[co], call.activation));
      }
}

ffi::Error conv2d_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::AnyBuffer bias, ffi::Result<ffi::AnyBuffer> y,
                           Conv2dAttrs attrs) {
  Conv2dCall call;
  if (ffi::Error err = decode_conv2d(x, kernel, bias, y, attrs, &call); err.failure()) return err;
  with_storage_type(call.type, [&](auto tag) { conv2d_cpu<typename decltype(tag)::type>(call); });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmConv2dCpu, jax_fcm::conv2d_cpu_impl, jax_fcm::bind_conv2d(xla::ffi::Ffi::Bind()));
