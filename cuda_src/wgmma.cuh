// Hopper warpgroup MMA (wgmma, sm_90a): a warpgroup of 4 consecutive warps
// multiplies a 64 x 16 A tile by a 16 x N B tile, both read straight from
// shared memory through 64-bit matrix descriptors, into fp32 accumulators
// that stay in registers while the tensor cores run asynchronously. On the
// H100 this is the full-rate tensor-core path: mma.sync (mma_sync.cuh) runs
// at about half of it, which is where the deep 1x1 layers lost to cuBLAS.
//
// Shared-memory layout both operands use here: 128-byte swizzle. A row of
// 64 16-bit values (128 bytes) holds its eight 16-byte chunks at chunk
// c ^ (row % 8); tiles start 1024-byte aligned (the hardware swizzles on
// address bits, so a tile's rows 0-7 must be one swizzle period).
//   A (x, K-major): row m of the tile = 64 input channels of pixel m; 8-row
//     groups 1024 bytes apart (SBO); a k16 step moves the start by 32 bytes.
//   B (w, N-major, "transposed"): row k = 64 output channels of input
//     channel k; 8-row groups 1024 bytes apart (SBO); 64-column atoms
//     kAtomBytes apart (LBO); a k16 step moves the start by 2048 bytes.
// Compiled only where the target is sm_90a (__CUDA_ARCH_FEAT_SM90_ALL);
// elsewhere the functions are empty and the launcher must not pick them.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace jax_fcm {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FCM_WGMMA_AVAILABLE 1
#else
#define FCM_WGMMA_AVAILABLE 0
#endif

// Matrix descriptor: start address, leading and stride byte offsets (all in
// 16-byte units), 128-byte swizzle (layout type 1, bits 62-63).
__device__ __forceinline__ uint64_t wgmma_descriptor(uint32_t smem_address, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  return uint64_t((smem_address & 0x3FFFF) >> 4) | uint64_t((lbo_bytes >> 4) & 0x3FFF) << 16 |
         uint64_t((sbo_bytes >> 4) & 0x3FFF) << 32 | uint64_t(1) << 62;
}

__device__ __forceinline__ void wgmma_fence() {
#if FCM_WGMMA_AVAILABLE
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if FCM_WGMMA_AVAILABLE
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
// Waits until at most `Pending` of this warpgroup's committed groups run.
template <int Pending>
__device__ __forceinline__ void wgmma_wait() {
#if FCM_WGMMA_AVAILABLE
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(Pending) : "memory");
#endif
}
// Pins accumulator registers at a point of the program: the compiler may not
// read them (epilogue) before the wait that precedes this, nor move writes.
template <int R>
__device__ __forceinline__ void wgmma_fence_operands(float (&d)[R]) {
#pragma unroll
  for (int i = 0; i < R; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// d (64 x N fp32, N / 2 registers per thread) = A . B (+ d when accumulate):
// A 64 x 16 K-major, B 16 x N N-major, both through descriptors. Lane l of
// warp w in the warpgroup holds rows 16 w + l / 4 (+ 8) and, per 8-column
// group j, columns 8 j + 2 (l % 4) (+ 1): d[4 j + {0, 1}] at the first
// row, d[4 j + {2, 3}] at the second.
template <typename T, int N>
struct Wgmma;

#if FCM_WGMMA_AVAILABLE
// Inline asm needs every accumulator register spelled out.
#define FCM_WGMMA_M64N64(TYPE, PTX_TYPE)                                                          \
  template <>                                                                                 \
  struct Wgmma<TYPE, 64> {                                                                    \
    static __device__ __forceinline__ void run(float (&d)[32], uint64_t a, uint64_t b, int accumulate) { \
      asm volatile(                                                                           \
          "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                     \
          "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX_TYPE "." PTX_TYPE " {"           \
          "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "  \
          "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"  \
          "}, %32, %33, p, 1, 1, 0, 1;\n}\n"                                               \
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
            "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
            "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
            "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]) \
          : "l"(a), "l"(b), "r"(accumulate));                                                \
    }                                                                                         \
  };

#define FCM_WGMMA_M64N128(TYPE, PTX_TYPE)                                                          \
  template <>                                                                                 \
  struct Wgmma<TYPE, 128> {                                                                    \
    static __device__ __forceinline__ void run(float (&d)[64], uint64_t a, uint64_t b, int accumulate) { \
      asm volatile(                                                                           \
          "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                     \
          "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX_TYPE "." PTX_TYPE " {"           \
          "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "  \
          "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "  \
          "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "  \
          "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"  \
          "}, %64, %65, p, 1, 1, 0, 1;\n}\n"                                               \
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
            "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
            "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
            "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
            "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
            "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
            "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
            "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]) \
          : "l"(a), "l"(b), "r"(accumulate));                                                \
    }                                                                                         \
  };

#define FCM_WGMMA_ALL_N(TYPE, PTX_TYPE) \
  FCM_WGMMA_M64N64(TYPE, PTX_TYPE)       \
  FCM_WGMMA_M64N128(TYPE, PTX_TYPE)
FCM_WGMMA_ALL_N(__nv_bfloat16, "bf16")
FCM_WGMMA_ALL_N(__half, "f16")
#undef FCM_WGMMA_ALL_N
#undef FCM_WGMMA_M64N64
#undef FCM_WGMMA_M64N128
#else
template <typename T, int N>
struct Wgmma {
  static __device__ __forceinline__ void run(float (&)[N / 2], uint64_t, uint64_t, int) {}
};
#endif

// d (64 x N fp32) += A . B with A from registers: each warp of the
// warpgroup holds its 16 rows x 16 k as mma.sync's m16n8k16 A fragment
// (a[0]: row g, k 2t..2t+1; a[1]: row g + 8; a[2], a[3]: k + 8), which is,
// pair for pair, the accumulator layout above: the first GEMM's results
// feed the second without shared memory (jax_fcm.pw_pw). B N-major through
// its descriptor, as in Wgmma. Always accumulates.
template <typename T, int N>
struct WgmmaRs;

#if FCM_WGMMA_AVAILABLE
#define FCM_WGMMA_RS_M64N64(TYPE, PTX_TYPE)                                                      \
  template <>                                                                                 \
  struct WgmmaRs<TYPE, 64> {                                                                 \
    static __device__ __forceinline__ void run(float (&d)[32], const uint32_t (&a)[4], uint64_t b) { \
      asm volatile(                                                                           \
          "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                     \
          "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX_TYPE "." PTX_TYPE " {"           \
          "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "\
          "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"  \
          "}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"                     \
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
            "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
            "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
            "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]) \
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));                          \
    }                                                                                         \
  };

#define FCM_WGMMA_RS_M64N96(TYPE, PTX_TYPE)                                                      \
  template <>                                                                                 \
  struct WgmmaRs<TYPE, 96> {                                                                 \
    static __device__ __forceinline__ void run(float (&d)[48], const uint32_t (&a)[4], uint64_t b) { \
      asm volatile(                                                                           \
          "{\n.reg .pred p;\nsetp.ne.b32 p, %53, 0;\n"                                     \
          "wgmma.mma_async.sync.aligned.m64n96k16.f32." PTX_TYPE "." PTX_TYPE " {"           \
          "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "\
          "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "\
          "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47"  \
          "}, {%48, %49, %50, %51}, %52, p, 1, 1, 1;\n}\n"                     \
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
            "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
            "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
            "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
            "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
            "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]) \
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));                          \
    }                                                                                         \
  };

#define FCM_WGMMA_RS_M64N128(TYPE, PTX_TYPE)                                                      \
  template <>                                                                                 \
  struct WgmmaRs<TYPE, 128> {                                                                 \
    static __device__ __forceinline__ void run(float (&d)[64], const uint32_t (&a)[4], uint64_t b) { \
      asm volatile(                                                                           \
          "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                     \
          "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX_TYPE "." PTX_TYPE " {"           \
          "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "\
          "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "\
          "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "\
          "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"  \
          "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"                     \
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
            "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
            "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
            "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
            "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
            "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
            "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
            "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]) \
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));                          \
    }                                                                                         \
  };

#define FCM_WGMMA_RS_ALL_N(TYPE, PTX_TYPE) \
  FCM_WGMMA_RS_M64N64(TYPE, PTX_TYPE)       \
  FCM_WGMMA_RS_M64N96(TYPE, PTX_TYPE)       \
  FCM_WGMMA_RS_M64N128(TYPE, PTX_TYPE)
FCM_WGMMA_RS_ALL_N(__nv_bfloat16, "bf16")
FCM_WGMMA_RS_ALL_N(__half, "f16")
#undef FCM_WGMMA_RS_ALL_N
#undef FCM_WGMMA_RS_M64N64
#undef FCM_WGMMA_RS_M64N96
#undef FCM_WGMMA_RS_M64N128
#else
template <typename T, int N>
struct WgmmaRs {
  static __device__ __forceinline__ void run(float (&)[N / 2], const uint32_t (&)[4], uint64_t) {}
};
#endif

}  // namespace jax_fcm
