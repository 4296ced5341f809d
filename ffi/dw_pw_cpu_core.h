// The CPU handlers' depthwise -> pointwise loop, shared by dw_pw and mbconv
// (whose expanded tensor is its input): fp32 accumulation, the intermediate
// rounded to the storage type (as the GPU feeds it to the tensor cores),
// blocked over output pixels so the intermediate block stays in cache.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "activations.h"
#include "depthwise_cpu_core.h"
#include "dw_pw_params.h"
#include "float16_convert.h"
#include "pointwise_cpu_core.h"

namespace jax_fcm {

// Depthwise and pointwise weights as floats.
struct DwPwWeightsF32 {
  std::vector<float> dw, dw_bias, pw, pw_bias;
  template <typename Storage>
  static DwPwWeightsF32 read(const DwPwShape& s, const void* dw, const void* dw_bias, const void* pw,
                             const void* pw_bias) {
    return {to_floats<Storage>(dw, s.kernel * s.kernel * s.c), to_floats<Storage>(dw_bias, s.c),
            to_floats<Storage>(pw, s.c * s.cout), to_floats<Storage>(pw_bias, s.cout)};
  }
};

// For every output pixel (n, oy, ox) of s, calls store(n, oy, ox, out) with
// out = the pointwise result plus its bias (Cout floats, before any activation).
template <typename Storage, class Store>
void depthwise_pointwise_cpu(const DwPwShape& s, const Storage* x, const DwPwWeightsF32& wt, int dw_activation,
                             Store&& store) {
  using C = Conv<Storage>;
  constexpr int64_t kPixelBlock = 16;
  std::vector<float> mid(kPixelBlock * s.c), acc(kPixelBlock * s.cout);
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t oy = 0; oy < s.ho; ++oy) {
      for (int64_t ox0 = 0; ox0 < s.wo; ox0 += kPixelBlock) {
        const int64_t np = std::min(kPixelBlock, s.wo - ox0);
        std::fill(mid.begin(), mid.end(), 0.f);
        for (int64_t p = 0; p < np; ++p) {
          float* m = &mid[p * s.c];
          add_depthwise_pixel(s, x, wt.dw.data(), n, oy, ox0 + p, m);
          for (int64_t c = 0; c < s.c; ++c)
            m[c] = C::to_float(C::from_float(apply_activation(m[c] + wt.dw_bias[c], dw_activation)));
        }
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t p = 0; p < np; ++p) {
          float* out = &acc[p * s.cout];
          add_pointwise_pixel(&mid[p * s.c], wt.pw.data(), s.c, s.cout, out);
          for (int64_t co = 0; co < s.cout; ++co) out[co] += wt.pw_bias[co];
          store(n, oy, ox0 + p, out);
        }
      }
    }
  }
}

}  // namespace jax_fcm
