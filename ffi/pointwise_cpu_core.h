// One pixel of a pointwise (1x1) convolution on the CPU, shared by the
// standalone pointwise handler and the fused DW -> PW loop.
#pragma once

#include <cstdint>

namespace jax_fcm {

// out[co] += sum over c of a[c] * w[c][co], fp32, walking w row by row (the
// row-major [Cin][Cout] layout the weights come in).
inline void add_pointwise_pixel(const float* a, const float* w, int64_t cin, int64_t cout, float* out) {
  for (int64_t c = 0; c < cin; ++c) {
    const float v = a[c];
    const float* row = w + c * cout;
    for (int64_t co = 0; co < cout; ++co) out[co] += v * row[co];
  }
}

}  // namespace jax_fcm
