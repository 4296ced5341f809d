// CPU handler of the depthwise backward. Same contract as the CUDA kernel:
// fp32 accumulation, dx rounded once to the input dtype. It scatters each
// output pixel's dy over its window (dx) and gathers the window's x (weight
// gradient); all of an image's weight gradient goes to group 0 of
// dw_partials and the other groups are zeros (callers sum over groups).
#include <algorithm>
#include <vector>

#include "dw_backward_ffi.h"
#include "storage_dispatch.h"
#include "float16_convert.h"

namespace jax_fcm {
namespace {

template <typename Storage>
void dw_backward_cpu(const DwBackwardCall& call) {
  using Cv = Conv<Storage>;
  const DwBackwardShape& s = call.shape;
  const int64_t k = s.kernel, taps = k * k, image = s.h * s.w * s.c;
  const auto* x = static_cast<const Storage*>(call.ptrs.x);
  const auto* dy = static_cast<const Storage*>(call.ptrs.dy);
  const auto* kernel = static_cast<const Storage*>(call.ptrs.kernel);
  auto* dx = static_cast<Storage*>(call.ptrs.dx);
  std::vector<float> w(taps * s.c);
  for (int64_t i = 0; i < taps * s.c; ++i) w[i] = Cv::to_float(kernel[i]);
  std::fill(call.ptrs.dw_partials, call.ptrs.dw_partials + s.n * s.groups * (taps + 1) * s.c, 0.f);

  std::vector<float> dx_acc(image), g(s.c);
  for (int64_t n = 0; n < s.n; ++n) {
    std::fill(dx_acc.begin(), dx_acc.end(), 0.f);
    float* partial = call.ptrs.dw_partials + n * s.groups * (taps + 1) * s.c;  // group 0
    const Storage* xn = x + n * image;
    for (int64_t oy = 0; oy < s.ho; ++oy) {
      for (int64_t ox = 0; ox < s.wo; ++ox) {
        const Storage* src = dy + ((n * s.ho + oy) * s.wo + ox) * s.c;
        for (int64_t c = 0; c < s.c; ++c) g[c] = Cv::to_float(src[c]), partial[taps * s.c + c] += g[c];
        for (int64_t kh = 0; kh < k; ++kh) {
          const int64_t iy = oy * s.stride - s.pad_top + kh;
          if (iy < 0 || iy >= s.h) continue;
          for (int64_t kw = 0; kw < k; ++kw) {
            const int64_t ix = ox * s.stride - s.pad_left + kw;
            if (ix < 0 || ix >= s.w) continue;
            const int64_t pixel = (iy * s.w + ix) * s.c, tap = (kh * k + kw) * s.c;
            for (int64_t c = 0; c < s.c; ++c) {
              dx_acc[pixel + c] += g[c] * w[tap + c];
              partial[tap + c] += Cv::to_float(xn[pixel + c]) * g[c];
            }
          }
        }
      }
    }
    for (int64_t i = 0; i < image; ++i) dx[n * image + i] = Cv::from_float(dx_acc[i]);
  }
}

ffi::Error dw_backward_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer dy, ffi::AnyBuffer kernel,
                                ffi::Result<ffi::AnyBuffer> dx, ffi::Result<ffi::AnyBuffer> dw_partials,
                                DwBackwardAttrs attrs) {
  DwBackwardCall call;
  if (ffi::Error err = decode_dw_backward(x, dy, kernel, dx, dw_partials, attrs, &call); err.failure()) return err;
  with_storage_type(call.type, [&](auto tag) { dw_backward_cpu<typename decltype(tag)::type>(call); });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmDwBackwardCpu, jax_fcm::dw_backward_cpu_impl,
                              jax_fcm::bind_dw_backward(xla::ffi::Ffi::Bind()));
