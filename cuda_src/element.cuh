// Element types of the kernels: conversion to and from the fp32 used for all
// arithmetic, and 4-wide shared-memory loads/stores (8 bytes for 16-bit types,
// 16 bytes for float) that the depthwise stage works in.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace jax_fcm {

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
};

// Pair conversions of the 16-bit types (two elements per 32-bit word).
template <typename T>
struct Pair;
template <>
struct Pair<__nv_bfloat16> {
  using T2 = __nv_bfloat162;
  static __device__ __forceinline__ float2 to_float2(T2 v) { return __bfloat1622float2(v); }
  static __device__ __forceinline__ T2 from_float2(float2 v) { return __float22bfloat162_rn(v); }
};
template <>
struct Pair<__half> {
  using T2 = __half2;
  static __device__ __forceinline__ float2 to_float2(T2 v) { return __half22float2(v); }
  static __device__ __forceinline__ T2 from_float2(float2 v) { return __float22half2_rn(v); }
};

// The 16-bit types share everything but the pair conversions.
template <typename T>
struct Elem16 {
  using T2 = typename Pair<T>::T2;
  static __device__ __forceinline__ void load4(const T* p, float (&v)[4]) {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    const float2 lo = Pair<T>::to_float2(*reinterpret_cast<const T2*>(&raw.x));
    const float2 hi = Pair<T>::to_float2(*reinterpret_cast<const T2*>(&raw.y));
    v[0] = lo.x, v[1] = lo.y, v[2] = hi.x, v[3] = hi.y;
  }
  static __device__ __forceinline__ void store4(T* p, const float (&v)[4]) {
    uint2 raw;
    *reinterpret_cast<T2*>(&raw.x) = Pair<T>::from_float2(make_float2(v[0], v[1]));
    *reinterpret_cast<T2*>(&raw.y) = Pair<T>::from_float2(make_float2(v[2], v[3]));
    *reinterpret_cast<uint2*>(p) = raw;
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

}  // namespace jax_fcm
