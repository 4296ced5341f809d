// Activation functions shared by the CUDA kernels and the CPU handler, so both
// back ends compute the same epilogue. Codes match jax_fcm/activations.py.
#pragma once

#include <cmath>
#include <type_traits>

#if defined(__CUDACC__)
#define FCM_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define FCM_HOST_DEVICE inline
#endif

namespace jax_fcm {

enum Activation : int {
  kActNone = 0,
  kActRelu = 1,
  kActRelu6 = 2,
  kActSilu = 3,
  kActGeluExact = 4,
  kActGeluTanh = 5,
  kActHardSwish = 6,
  kActCount = 7,
};

FCM_HOST_DEVICE float apply_activation(float v, int act) {
  switch (act) {
    case kActRelu:
      return v > 0.f ? v : 0.f;
    case kActRelu6:
      return fminf(fmaxf(v, 0.f), 6.f);
    case kActSilu:
      return v / (1.f + expf(-v));
    case kActGeluExact:
      return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    case kActGeluTanh: {
      const float inner = 0.79788456080286536f * (v + 0.044715f * v * v * v);
      return 0.5f * v * (1.f + tanhf(inner));
    }
    case kActHardSwish:
      return v * fminf(fmaxf(v + 3.f, 0.f), 6.f) * (1.f / 6.f);
    default:
      return v;
  }
}

// Calls f(std::integral_constant<int, act>{}): the switch runs once per call
// site instead of once per element, and each branch inlines one activation.
template <class F>
FCM_HOST_DEVICE void with_activation(int act, F&& f) {
  switch (act) {
    case kActRelu: f(std::integral_constant<int, kActRelu>{}); break;
    case kActRelu6: f(std::integral_constant<int, kActRelu6>{}); break;
    case kActSilu: f(std::integral_constant<int, kActSilu>{}); break;
    case kActGeluExact: f(std::integral_constant<int, kActGeluExact>{}); break;
    case kActGeluTanh: f(std::integral_constant<int, kActGeluTanh>{}); break;
    case kActHardSwish: f(std::integral_constant<int, kActHardSwish>{}); break;
    default: f(std::integral_constant<int, kActNone>{}); break;
  }
}

}  // namespace jax_fcm
