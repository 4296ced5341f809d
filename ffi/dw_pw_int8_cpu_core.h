// The int8 fused DW -> PW on the host, the integer math of the CUDA kernel:
// int32 sums of the shared depthwise loop, requantize() of
// cuda_src/requantize.h, pixel by pixel. The CPU handler's loop, and the
// reference of scripts/dw_pw_int8_check.cu (no FFI types here).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "depthwise_cpu_core.h"
#include "dw_pw_params.h"
#include "requantize.h"

namespace jax_fcm {

inline void dw_pw_int8_host(const DwPwShape& s, const DwPwEpilogue& e, const DwPwPointers& p) {
  const auto* x = static_cast<const int8_t*>(p.x);
  const auto* dw = static_cast<const int8_t*>(p.dw_kernel);
  const auto* dw_bias = static_cast<const int32_t*>(p.dw_bias);
  const auto* pw = static_cast<const int8_t*>(p.pw_kernel);  // [Cout][C]
  const auto* pw_bias = static_cast<const int32_t*>(p.pw_bias);
  auto* y = static_cast<int8_t*>(p.y);
  std::vector<int32_t> acc(s.c);
  std::vector<int8_t> mid(s.c);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oy = 0; oy < s.ho; ++oy)
      for (int64_t ox = 0; ox < s.wo; ++ox) {
        std::copy(dw_bias, dw_bias + s.c, acc.begin());
        add_depthwise_pixel(s, x, dw, n, oy, ox, acc.data());
        for (int64_t c = 0; c < s.c; ++c)
          mid[c] = int8_t(requantize(acc[c], p.dw_multiplier[c], e.dw_qmin, e.dw_qmax));
        requantized_pixel(mid.data(), s.c, pw, pw_bias, p.pw_multiplier, s.cout, e.pw_qmin, e.pw_qmax,
                          y + ((n * s.ho + oy) * s.wo + ox) * s.cout);
      }
}

}  // namespace jax_fcm
