// CPU handler of the fused DW->PW op. Same contract as the CUDA kernel: fp32
// accumulation, the intermediate rounded to the input dtype (as the GPU feeds
// it to the tensor cores), and blocked over output pixels so the intermediate
// block stays in cache instead of round-tripping through memory.
#include <algorithm>
#include <vector>

#include "activations.h"
#include "dw_pw_ffi.h"
#include "float16_convert.h"

namespace jax_fcm {
namespace {

constexpr int64_t kPixelBlock = 16;

template <typename Storage>
std::vector<float> to_floats(const void* data, int64_t count) {
  const auto* src = static_cast<const Storage*>(data);
  std::vector<float> out(count);
  for (int64_t i = 0; i < count; ++i) out[i] = Conv<Storage>::to_float(src[i]);
  return out;
}

template <typename Storage>
void dw_pw_cpu(const DwPwCall& call) {
  using C = Conv<Storage>;
  const DwPwShape& s = call.shape;
  const int64_t k = s.kernel;
  const std::vector<float> dw = to_floats<Storage>(call.ptrs.dw_kernel, k * k * s.c);
  const std::vector<float> dwb = to_floats<Storage>(call.ptrs.dw_bias, s.c);
  const std::vector<float> pw = to_floats<Storage>(call.ptrs.pw_kernel, s.c * s.cout);
  const std::vector<float> pwb = to_floats<Storage>(call.ptrs.pw_bias, s.cout);
  const auto* x = static_cast<const Storage*>(call.ptrs.x);
  auto* y = static_cast<Storage*>(call.ptrs.y);

  std::vector<float> mid(kPixelBlock * s.c), acc(kPixelBlock * s.cout);
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t oy = 0; oy < s.ho; ++oy) {
      for (int64_t ox0 = 0; ox0 < s.wo; ox0 += kPixelBlock) {
        const int64_t np = std::min(kPixelBlock, s.wo - ox0);
        std::fill(mid.begin(), mid.end(), 0.f);
        for (int64_t p = 0; p < np; ++p) {
          float* m = &mid[p * s.c];
          for (int64_t ky = 0; ky < k; ++ky) {
            const int64_t iy = oy * s.stride - s.pad_top + ky;
            if (iy < 0 || iy >= s.h) continue;
            for (int64_t kx = 0; kx < k; ++kx) {
              const int64_t ix = (ox0 + p) * s.stride - s.pad_left + kx;
              if (ix < 0 || ix >= s.w) continue;
              const Storage* in = x + ((n * s.h + iy) * s.w + ix) * s.c;
              const float* w = &dw[(ky * k + kx) * s.c];
              for (int64_t c = 0; c < s.c; ++c) m[c] += C::to_float(in[c]) * w[c];
            }
          }
          for (int64_t c = 0; c < s.c; ++c)
            m[c] = C::to_float(C::from_float(apply_activation(m[c] + dwb[c], call.epilogue.dw_activation)));
        }
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t p = 0; p < np; ++p) {
          float* out = &acc[p * s.cout];
          for (int64_t c = 0; c < s.c; ++c) {
            const float a = mid[p * s.c + c];
            const float* w = &pw[c * s.cout];
            for (int64_t co = 0; co < s.cout; ++co) out[co] += a * w[co];
          }
          Storage* dst = y + ((n * s.ho + oy) * s.wo + ox0 + p) * s.cout;
          for (int64_t co = 0; co < s.cout; ++co)
            dst[co] = C::from_float(apply_activation(out[co] + pwb[co], call.epilogue.pw_activation));
        }
      }
    }
  }
}

ffi::Error dw_pw_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias,
                          ffi::AnyBuffer pw_kernel, ffi::AnyBuffer pw_bias, ffi::Result<ffi::AnyBuffer> y,
                          DwPwAttrs attrs) {
  DwPwCall call;
  if (ffi::Error err = decode_dw_pw(x, dw_kernel, dw_bias, pw_kernel, pw_bias, y, attrs, &call); err.failure())
    return err;
  switch (call.type) {
    case ElementType::kF32: dw_pw_cpu<float>(call); break;
    case ElementType::kBF16: dw_pw_cpu<BFloat16>(call); break;
    case ElementType::kF16: dw_pw_cpu<Float16>(call); break;
  }
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmDwPwCpu, jax_fcm::dw_pw_cpu_impl, jax_fcm::bind_dw_pw(xla::ffi::Ffi::Bind()));
