// Warp-level tensor-core primitives for 16-bit inputs: ldmatrix (shared ->
// fragment registers, transposing on the way for row-major B) and mma.sync
// m16n8k16 with fp32 accumulators. WMMA's load_matrix_sync on these tiles
// compiled to generic 32-bit loads plus a movmatrix per B register (Nsight
// Compute: 104 load/transpose instructions per warp and chunk for 24 MMAs);
// ldmatrix needs 7.
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

template <typename T>
struct Mma16816;

#define FCM_MMA16816(TYPE, PTX_TYPE)                                                                              \
  template <>                                                                                                     \
  struct Mma16816<TYPE> {                                                                                         \
    /* d += a (16x16, row) x b (16x8, col); lane (g = lane / 4, t = lane % 4) holds d rows g and g + 8, */        \
    /* columns 2t and 2t + 1. */                                                                                  \
    static __device__ __forceinline__ void run(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) { \
      asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." PTX_TYPE "." PTX_TYPE                                \
                   ".f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"                       \
                   : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                                               \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));                               \
    }                                                                                                             \
  };
FCM_MMA16816(__nv_bfloat16, "bf16")
FCM_MMA16816(__half, "f16")
#undef FCM_MMA16816

}  // namespace jax_fcm
