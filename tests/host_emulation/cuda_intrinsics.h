// The CUDA intrinsics of the int8 depthwise stage (cuda_src/dw_pw_depthwise_int8.cuh), written for the
// host from their definitions in the CUDA Math API and PTX ISA docs, so that its device code runs (one
// thread at a time) under a host compiler: force-included before it (-include).
#pragma once

#include <cstdint>
#include <cstring>

#define __device__
#define __host__
#define __forceinline__ inline
#define __CUDACC__ 1  // requantize.h's device helpers

struct EmulatedThreadIdx {
  int x = 0, y = 0, z = 0;
};
inline EmulatedThreadIdx threadIdx;

// Result byte i = byte (s >> 4i) & 7 of the 8 bytes {y:x}.
inline uint32_t __byte_perm(uint32_t x, uint32_t y, uint32_t s) {
  uint8_t bytes[8];
  std::memcpy(bytes, &x, 4);
  std::memcpy(bytes + 4, &y, 4);
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) r |= uint32_t(bytes[(s >> (4 * i)) & 7]) << (8 * i);
  return r;
}
// The low 32 bits of {hi:lo} >> (shift & 31).
inline uint32_t __funnelshift_r(uint32_t lo, uint32_t hi, uint32_t shift) {
  return uint32_t(((uint64_t(hi) << 32) | lo) >> (shift & 31));
}
// c + the dot product of the 4 signed bytes of a and b.
inline int __dp4a(int a, int b, int c) {
  for (int i = 0; i < 4; ++i) c += int(int8_t(a >> (8 * i))) * int(int8_t(b >> (8 * i)));
  return c;
}
inline float __int_as_float(int32_t v) {
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}
inline float __fmul_rn(float a, float b) { return a * b; }
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}
