// One pixel of a pointwise (1x1) convolution on the CPU, shared by the
// standalone pointwise handler and the fused DW -> PW loop; and rows of pixels
// through it (the standalone handler, mbconv's and pw_dw's expansions).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "activations.h"
#include "float16_convert.h"

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

// y[r][co] = act(bias[co] + sum over c of x[r][c] * w[c][co]) for rows r < m:
// fp32 accumulation, one rounding to Storage.
template <typename Storage>
void pointwise_rows_cpu(const Storage* x, int64_t m, int64_t cin, int64_t cout, const float* w, const float* bias,
                        int activation, Storage* y) {
  using Cv = Conv<Storage>;
  std::vector<float> a(cin), out(cout);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < cin; ++c) a[c] = Cv::to_float(x[r * cin + c]);
    std::copy(bias, bias + cout, out.begin());
    add_pointwise_pixel(a.data(), w, cin, cout, out.data());
    for (int64_t co = 0; co < cout; ++co) y[r * cout + co] = Cv::from_float(apply_activation(out[co], activation));
  }
}

}  // namespace jax_fcm
