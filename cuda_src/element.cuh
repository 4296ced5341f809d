// Element types of the kernels: conversion to and from the fp32 used for all
// arithmetic, and 4-wide shared-memory loads/stores (8 bytes for 16-bit types,
// 16 bytes for float; int8 stores only) that the depthwise stage works in.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "async_copy.cuh"

namespace jax_fcm {

// Whole 16- and 8-byte stores of packed words. Written as a struct copy
// (uint4, uint2) nvcc splits them into 32-bit stores: 4x the store
// instructions, and partial-sector writes to L2 (seen with Nsight Compute).
__device__ __forceinline__ void store_global_u32x4(void* p, uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  asm volatile("st.global.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"l"(__cvta_generic_to_global(p)), "r"(a), "r"(b),
               "r"(c), "r"(d)
               : "memory");
}
__device__ __forceinline__ void store_global_u32x2(void* p, uint32_t a, uint32_t b) {
  asm volatile("st.global.v2.u32 [%0], {%1, %2};\n" ::"l"(__cvta_generic_to_global(p)), "r"(a), "r"(b) : "memory");
}
__device__ __forceinline__ void store_shared_u32x2(void* p, uint32_t a, uint32_t b) {
  asm volatile("st.shared.v2.u32 [%0], {%1, %2};\n" ::"r"(shared_address(p)), "r"(a), "r"(b) : "memory");
}

template <typename T>
struct Elem;

template <>
struct Elem<float> {
  static __device__ __forceinline__ float to_float(float v) { return v; }
  static __device__ __forceinline__ float from_float(float v) { return v; }
  static __device__ __forceinline__ void load4(const float* p, float (&v)[4]) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
  }
  static __device__ __forceinline__ void store4(float* p, const float (&v)[4]) {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
  }
  // 4 values to a 16-byte aligned global address.
  static __device__ __forceinline__ void store4_global(float* p, const float (&v)[4]) {
    store_global_u32x4(p, __float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]), __float_as_uint(v[3]));
  }
  // 8 values to a 16-byte aligned global address (two 16-byte stores).
  static __device__ __forceinline__ void store8(float* p, const float (&v)[8]) {
    store_global_u32x4(p, __float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]), __float_as_uint(v[3]));
    store_global_u32x4(p + 4, __float_as_uint(v[4]), __float_as_uint(v[5]), __float_as_uint(v[6]),
                       __float_as_uint(v[7]));
  }
};

// Pair conversions of the 16-bit types (two elements per 32-bit word).
template <typename T>
struct Pair;
template <>
struct Pair<__nv_bfloat16> {
  using T2 = __nv_bfloat162;
  // bf16 is the top half of an fp32: one shift and one mask per pair
  // (__bfloat1622float2 compiles to a shift, a byte permute and another shift).
  static __device__ __forceinline__ float2 unpack(uint32_t bits) {
    return make_float2(__uint_as_float(bits << 16), __uint_as_float(bits & 0xffff0000u));
  }
  static __device__ __forceinline__ T2 from_float2(float2 v) { return __float22bfloat162_rn(v); }
};
template <>
struct Pair<__half> {
  using T2 = __half2;
  static __device__ __forceinline__ float2 unpack(uint32_t bits) {
    return __half22float2(*reinterpret_cast<const T2*>(&bits));
  }
  static __device__ __forceinline__ T2 from_float2(float2 v) { return __float22half2_rn(v); }
};

// The 16-bit types share everything but the pair conversions. Stores pack
// pairs into 32-bit words first: copying an array of T through a wider type
// lets the compiler split the store into 16-bit pieces.
template <typename T>
struct Elem16 {
  using T2 = typename Pair<T>::T2;
  static __device__ __forceinline__ uint32_t pack2(float a, float b) {
    const T2 pair = Pair<T>::from_float2(make_float2(a, b));
    return *reinterpret_cast<const uint32_t*>(&pair);
  }
  static __device__ __forceinline__ void load4(const T* p, float (&v)[4]) {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    const float2 lo = Pair<T>::unpack(raw.x), hi = Pair<T>::unpack(raw.y);
    v[0] = lo.x, v[1] = lo.y, v[2] = hi.x, v[3] = hi.y;
  }
  // 8 values from a 16-byte aligned address (global or shared).
  static __device__ __forceinline__ void load8(const T* p, float (&v)[8]) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = Pair<T>::unpack(words[i]);
      v[2 * i] = f.x, v[2 * i + 1] = f.y;
    }
  }
  // 4 values to an 8-byte aligned shared-memory address.
  static __device__ __forceinline__ void store4(T* p, const float (&v)[4]) {
    store_shared_u32x2(p, pack2(v[0], v[1]), pack2(v[2], v[3]));
  }
  // 4 values to an 8-byte aligned global address.
  static __device__ __forceinline__ void store4_global(T* p, const float (&v)[4]) {
    store_global_u32x2(p, pack2(v[0], v[1]), pack2(v[2], v[3]));
  }
  // 8 values to a 16-byte aligned global address (one 16-byte store).
  static __device__ __forceinline__ void store8(T* p, const float (&v)[8]) {
    store_global_u32x4(p, pack2(v[0], v[1]), pack2(v[2], v[3]), pack2(v[4], v[5]), pack2(v[6], v[7]));
  }
};

template <>
struct Elem<__nv_bfloat16> : Elem16<__nv_bfloat16> {
  static __device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }
};

template <>
struct Elem<__half> : Elem16<__half> {
  static __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }
};

// int8 (the quantized kernels): requantized values, integers carried in fp32,
// are packed through the fp32 bit pattern (1.5 * 2^23 + n holds n in its low
// mantissa bits) with an add and byte permutes, full-rate instructions where
// F2I is quarter-rate.
template <>
struct Elem<int8_t> {
  static __device__ __forceinline__ float to_float(int8_t v) { return float(v); }
  static __device__ __forceinline__ int8_t from_float(float v) { return int8_t(__float2int_rn(v)); }
  // Integer values in [-128, 127] (what the requantization gives), packed.
  static __device__ __forceinline__ uint32_t pack4(const float (&v)[4]) {
    uint32_t low[4];  // low byte: v mod 256
#pragma unroll
    for (int e = 0; e < 4; ++e) low[e] = __float_as_uint(v[e] + 12582912.f);  // 1.5 * 2^23
    return __byte_perm(__byte_perm(low[0], low[1], 0x0040), __byte_perm(low[2], low[3], 0x0040), 0x5410);
  }
  // 4 values to a 4-byte aligned shared-memory address.
  static __device__ __forceinline__ void store4(int8_t* p, const float (&v)[4]) {
    *reinterpret_cast<uint32_t*>(p) = pack4(v);
  }
  // 8 values to an 8-byte aligned global address (one 8-byte store).
  static __device__ __forceinline__ void store8(int8_t* p, const float (&v)[8]) {
    const float lo[4] = {v[0], v[1], v[2], v[3]}, hi[4] = {v[4], v[5], v[6], v[7]};
    store_global_u32x2(p, pack4(lo), pack4(hi));
  }
};

}  // namespace jax_fcm
