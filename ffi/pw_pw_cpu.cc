// CPU handlers of the fused PW -> PW op and of the ConvNeXt MLP around it.
// Same contract as the CUDA kernel: fp32 accumulation, the intermediate
// rounded to the input dtype after b1 and act1 (the CUDA kernel rounds it
// there to feed the second MMA), one rounding of the output (full fp32
// products for float32: the CPU has no TF32).
#include <algorithm>
#include <cmath>
#include <vector>

#include "activations.h"
#include "float16_convert.h"
#include "pointwise_cpu_core.h"
#include "pw_pw_ffi.h"
#include "storage_dispatch.h"

namespace jax_fcm {
namespace {

// ConvNeXt's LayerNorm of one pixel's channels in place (fp32 mean and
// variance, two passes), each value rounded by `round` as the CUDA kernel
// rounds the normalized row to the input dtype.
template <class Round>
void layer_norm_pixel(std::vector<float>& a, const std::vector<float>& scale, const std::vector<float>& shift,
                      float eps, Round round) {
  const float n = float(a.size());
  float sum = 0.f, squares = 0.f;
  for (float v : a) sum += v;
  const float mean = sum / n;
  for (float v : a) squares += (v - mean) * (v - mean);
  const float rstd = 1.f / std::sqrt(squares / n + eps);
  for (size_t c = 0; c < a.size(); ++c) a[c] = round((a[c] - mean) * rstd * scale[c] + shift[c]);
}

// The pw_pw math; with call.ptrs.block (jax_fcm_convnext_mlp) also the
// LayerNorm before and the layer-scaled residual after, as the CUDA kernel.
template <typename Storage>
void pw_pw_cpu(const PwPwCall& call) {
  using Cv = Conv<Storage>;
  const PwPwShape& s = call.shape;
  const std::vector<float> w1 = to_floats<Storage>(call.ptrs.w1, s.cin * s.hidden);
  const std::vector<float> b1 = to_floats<Storage>(call.ptrs.b1, s.hidden);
  const std::vector<float> w2 = to_floats<Storage>(call.ptrs.w2, s.hidden * s.cout);
  const std::vector<float> b2 = to_floats<Storage>(call.ptrs.b2, s.cout);
  const auto* x = static_cast<const Storage*>(call.ptrs.x);
  auto* y = static_cast<Storage*>(call.ptrs.y);
  const PwPwBlockEnds& block = call.ptrs.block;
  std::vector<float> ln_scale, ln_bias, layer_scale;
  if (block.active()) {
    ln_scale = to_floats<Storage>(block.ln_scale, s.cin);
    ln_bias = to_floats<Storage>(block.ln_bias, s.cin);
    layer_scale = to_floats<Storage>(block.layer_scale, s.cout);
  }
  const auto* residual = static_cast<const Storage*>(block.residual);
  std::vector<float> a(s.cin), mid(s.hidden), out(s.cout);
  for (int64_t m = 0; m < s.m; ++m) {
    for (int64_t c = 0; c < s.cin; ++c) a[c] = Cv::to_float(x[m * s.cin + c]);
    if (block.active())
      layer_norm_pixel(a, ln_scale, ln_bias, block.eps, [](float v) { return Cv::to_float(Cv::from_float(v)); });
    std::copy(b1.begin(), b1.end(), mid.begin());
    add_pointwise_pixel(a.data(), w1.data(), s.cin, s.hidden, mid.data());
    for (float& v : mid) v = Cv::to_float(Cv::from_float(apply_activation(v, call.act1)));
    std::copy(b2.begin(), b2.end(), out.begin());
    add_pointwise_pixel(mid.data(), w2.data(), s.hidden, s.cout, out.data());
    Storage* dst = y + m * s.cout;
    if (block.active())
      for (int64_t co = 0; co < s.cout; ++co)
        out[co] = Cv::to_float(residual[m * s.cout + co]) + layer_scale[co] * out[co];
    for (int64_t co = 0; co < s.cout; ++co) dst[co] = Cv::from_float(apply_activation(out[co], call.act2));
  }
}

ffi::Error pw_pw_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer w1, ffi::AnyBuffer b1, ffi::AnyBuffer w2,
                          ffi::AnyBuffer b2, ffi::Result<ffi::AnyBuffer> y, PwPwAttrs attrs) {
  PwPwCall call;
  if (ffi::Error err = decode_pw_pw(x, w1, b1, w2, b2, y, attrs, /*cuda=*/false, &call); err.failure()) return err;
  with_storage_type(call.type, [&](auto tag) { pw_pw_cpu<typename decltype(tag)::type>(call); });
  return ffi::Error::Success();
}

ffi::Error convnext_mlp_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer residual, ffi::AnyBuffer ln_scale,
                                 ffi::AnyBuffer ln_bias, ffi::AnyBuffer w1, ffi::AnyBuffer b1, ffi::AnyBuffer w2,
                                 ffi::AnyBuffer b2, ffi::AnyBuffer layer_scale, ffi::Result<ffi::AnyBuffer> y,
                                 ConvNextMlpAttrs attrs) {
  PwPwCall call;
  if (ffi::Error err = decode_convnext_mlp(x, residual, ln_scale, ln_bias, w1, b1, w2, b2, layer_scale, y, attrs,
                                           /*cuda=*/false, &call);
      err.failure())
    return err;
  with_storage_type(call.type, [&](auto tag) { pw_pw_cpu<typename decltype(tag)::type>(call); });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmPwPwCpu, jax_fcm::pw_pw_cpu_impl, jax_fcm::bind_pw_pw(xla::ffi::Ffi::Bind()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmConvNextMlpCpu, jax_fcm::convnext_mlp_cpu_impl,
                              jax_fcm::bind_convnext_mlp(xla::ffi::Ffi::Bind()));
