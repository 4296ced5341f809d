// Activation functions shared by the CUDA kernels and the CPU handler, so both
// back ends compute the same epilogue. Codes match jax_fcm/activations.py.
#pragma once

#include <cmath>

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

}  // namespace jax_fcm
