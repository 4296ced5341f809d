// Warp-level tensor-core primitives: ldmatrix (shared -> fragment registers,
// transposing on the way for row-major B) and mma.sync with fp32
// accumulators, m16n8k16 for bf16/fp16 and m16n8k8 for TF32; int8 m16n8k32
// with int32 accumulators (the quantized kernels). WMMA's
// load_matrix_sync on our shared tiles compiled to generic loads (plus a
// movmatrix per B register for 16-bit types; Nsight Compute: 104
// load/transpose instructions per warp and chunk for 24 MMAs); ldmatrix needs 7.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "async_copy.cuh"

namespace jax_fcm {

// Four 8x8 b16 matrices; lanes 8i..8i+7 give the 16-byte rows of matrix i.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
}
// The same, each matrix transposed: a row-major [k][n] tile comes out in the
// "col" layout mma.sync takes for B.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
}

// One warp MMA step: d (16 x 8) += a (16 x kK, row) x b (kK x 8, col). Lane
// (g = lane / 4, t = lane % 4) holds d rows g and g + 8, columns 2t and 2t + 1.
template <typename T>
struct MmaSync;

#define FCM_MMA_SYNC(TYPE, K, PTX_TYPE)                                                                         \
  template <>                                                                                                   \
  struct MmaSync<TYPE> {                                                                                        \
    using Acc = float;                                                                                          \
    static constexpr int kK = K;                                                                                \
    static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) { \
      asm volatile("mma.sync.aligned.m16n8k" #K ".row.col.f32." PTX_TYPE "." PTX_TYPE                          \
                   ".f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"                     \
                   : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                                             \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));                             \
    }                                                                                                           \
  };
FCM_MMA_SYNC(__nv_bfloat16, 16, "bf16")
FCM_MMA_SYNC(__half, 16, "f16")
FCM_MMA_SYNC(float, 8, "tf32")  // operands rounded to TF32 first (tf32_bits)
#undef FCM_MMA_SYNC

// int8 x int8 -> int32. The fragments hold 4 bytes per register where the
// 16-bit ones hold 2 elements, so ldmatrix's b16 matrices serve as they are
// (an 8 x 8 b16 matrix is 8 rows of 16 int8 values); B must be staged [n][k]
// (ldmatrix cannot transpose bytes).
template <>
struct MmaSync<int8_t> {
  using Acc = int;
  static constexpr int kK = 32;
  static __device__ __forceinline__ void run(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

// fp32 -> TF32 (round to nearest, ties away: what WMMA's __float_to_tf32
// does), as the bits an MMA operand register takes.
__device__ __forceinline__ uint32_t tf32_bits(float v) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(v));
  return r;
}

}  // namespace jax_fcm
