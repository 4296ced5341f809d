// bfloat16 / float16 <-> float conversions for the CPU handler, bit-exact
// with round-to-nearest-even (what XLA and the CUDA intrinsics do), so the CPU
// and GPU paths round the on-chip intermediate the same way.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace jax_fcm {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

struct BFloat16 {
  uint16_t bits;
  static float to_float(BFloat16 v) { return bits_float(uint32_t(v.bits) << 16); }
  static BFloat16 from_float(float f) {
    const uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return {uint16_t((u >> 16) | 0x40u)};  // quiet NaN
    return {uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
  }
};

struct Float16 {
  uint16_t bits;
  static float to_float(Float16 v) {
    const uint32_t sign = uint32_t(v.bits & 0x8000u) << 16;
    const uint32_t exp = (v.bits >> 10) & 0x1fu, mant = v.bits & 0x3ffu;
    if (exp == 0) {  // zero or subnormal: mant * 2^-24
      const float mag = std::ldexp(float(mant), -24);
      return sign ? -mag : mag;
    }
    if (exp == 31) return bits_float(sign | 0x7f800000u | (mant << 13));
    return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
  }
  static Float16 from_float(float f) {
    const uint32_t u = float_bits(f);
    const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
    const uint32_t mag = u & 0x7fffffffu;
    if (mag > 0x7f800000u) return {uint16_t(sign | 0x7e00u)};  // NaN
    if (mag >= 0x477ff000u) return {uint16_t(sign | 0x7c00u)};  // >= 65520 rounds to inf
    if (mag < 0x38800000u) {  // below 2^-14: subnormal, units of 2^-24 (exact scaling, RNE)
      return {uint16_t(sign | uint16_t(std::nearbyint(bits_float(mag) * 16777216.0f)))};
    }
    const uint32_t rounded = mag + 0xfffu + ((mag >> 13) & 1u);
    return {uint16_t(sign | ((rounded - 0x38000000u) >> 13))};
  }
};

struct Float32 {
  static float to_float(float v) { return v; }
  static float from_float(float v) { return v; }
};

}  // namespace jax_fcm

namespace jax_fcm {

// Conversions by storage type: Conv<float>, Conv<BFloat16>, Conv<Float16>.
template <typename Storage>
struct Conv : Storage {};
template <>
struct Conv<float> : Float32 {};

// count elements of Storage at data, as floats (the CPU handlers' weights).
template <typename Storage>
std::vector<float> to_floats(const void* data, int64_t count) {
  const auto* src = static_cast<const Storage*>(data);
  std::vector<float> out(count);
  for (int64_t i = 0; i < count; ++i) out[i] = Conv<Storage>::to_float(src[i]);
  return out;
}

}  // namespace jax_fcm
