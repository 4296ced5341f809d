// Stand-in for cuda_src/element.cuh in the host emulation: the int8 A-tile store only (what the int8
// depthwise stage uses), rounding half to even as Elem<int8_t>::pack4 does.
#pragma once

#include <cmath>
#include <cstdint>

namespace jax_fcm {

template <typename T>
struct Elem;

template <>
struct Elem<int8_t> {
  static void store4(int8_t* p, const float (&v)[4]) {
    for (int e = 0; e < 4; ++e) p[e] = int8_t(std::nearbyint(v[e]));
  }
};

}  // namespace jax_fcm
