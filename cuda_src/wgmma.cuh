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
// Inline asm needs every accumulator register spelled out: the operand
// numbers of 32, 48, 64 or 96 fp32 accumulators (N = 64, 96, 128, 192) and their
// "+f" bindings, written once here for both wgmma forms (this one and
// WgmmaRs below).
#define FCM_WGMMA_REGS_32 \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "               \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define FCM_WGMMA_REGS_48 FCM_WGMMA_REGS_32 ", %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47"
#define FCM_WGMMA_REGS_64 FCM_WGMMA_REGS_48 ", %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define FCM_WGMMA_REGS_80 FCM_WGMMA_REGS_64 ", %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79"
#define FCM_WGMMA_REGS_96 FCM_WGMMA_REGS_80 ", %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95"
#define FCM_WGMMA_D8(d, i)                                                                                      \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), \
      "+f"(d[i + 7])
#define FCM_WGMMA_OUTS_32(d) FCM_WGMMA_D8(d, 0), FCM_WGMMA_D8(d, 8), FCM_WGMMA_D8(d, 16), FCM_WGMMA_D8(d, 24)
#define FCM_WGMMA_OUTS_48(d) FCM_WGMMA_OUTS_32(d), FCM_WGMMA_D8(d, 32), FCM_WGMMA_D8(d, 40)
#define FCM_WGMMA_OUTS_64(d) FCM_WGMMA_OUTS_48(d), FCM_WGMMA_D8(d, 48), FCM_WGMMA_D8(d, 56)
#define FCM_WGMMA_OUTS_96(d) \
  FCM_WGMMA_OUTS_64(d), FCM_WGMMA_D8(d, 64), FCM_WGMMA_D8(d, 72), FCM_WGMMA_D8(d, 80), FCM_WGMMA_D8(d, 88)

// A, B: the descriptors' operand numbers, PRED: `accumulate`'s (the three
// after the accumulators).
#define FCM_WGMMA_SS(TYPE, PTX_TYPE, N, REGS, OUTS, A, B, PRED)                                              \
  template <>                                                                                             \
  struct Wgmma<TYPE, N> {                                                                                 \
    static __device__ __forceinline__ void run(float (&d)[N / 2], uint64_t a, uint64_t b, int accumulate) { \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " PRED ", 0;\n"                                        \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." PTX_TYPE "." PTX_TYPE " {" REGS "}, " A  \
                   ", " B ", p, 1, 1, 0, 1;\n}\n"                                                            \
                   : OUTS(d)                                                                              \
                   : "l"(a), "l"(b), "r"(accumulate));                                                    \
    }                                                                                                     \
  };
#define FCM_WGMMA_ALL_N(TYPE, PTX_TYPE)                                                          \
  FCM_WGMMA_SS(TYPE, PTX_TYPE, 64, FCM_WGMMA_REGS_32, FCM_WGMMA_OUTS_32, "%32", "%33", "%34")  \
  FCM_WGMMA_SS(TYPE, PTX_TYPE, 128, FCM_WGMMA_REGS_64, FCM_WGMMA_OUTS_64, "%64", "%65", "%66")
FCM_WGMMA_ALL_N(__nv_bfloat16, "bf16")
FCM_WGMMA_ALL_N(__half, "f16")
#undef FCM_WGMMA_ALL_N
#undef FCM_WGMMA_SS
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
// A: the four A registers' operand numbers, B: the descriptor's, PRED: the
// scale-d flag's (always 1: d += A . B).
#define FCM_WGMMA_RS(TYPE, PTX_TYPE, N, REGS, OUTS, A, B, PRED)                                             \
  template <>                                                                                            \
  struct WgmmaRs<TYPE, N> {                                                                              \
    static __device__ __forceinline__ void run(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t b) {   \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " PRED ", 0;\n"                                       \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." PTX_TYPE "." PTX_TYPE " {" REGS "}, " A \
                   ", " B ", p, 1, 1, 1;\n}\n"                                                              \
                   : OUTS(d)                                                                             \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));                        \
    }                                                                                                    \
  };
#define FCM_WGMMA_RS_ALL_N(TYPE, PTX_TYPE)                                                                      \
  FCM_WGMMA_RS(TYPE, PTX_TYPE, 64, FCM_WGMMA_REGS_32, FCM_WGMMA_OUTS_32, "{%32, %33, %34, %35}", "%36", "%37")  \
  FCM_WGMMA_RS(TYPE, PTX_TYPE, 96, FCM_WGMMA_REGS_48, FCM_WGMMA_OUTS_48, "{%48, %49, %50, %51}", "%52", "%53")  \
  FCM_WGMMA_RS(TYPE, PTX_TYPE, 128, FCM_WGMMA_REGS_64, FCM_WGMMA_OUTS_64, "{%64, %65, %66, %67}", "%68", "%69")  \
  FCM_WGMMA_RS(TYPE, PTX_TYPE, 192, FCM_WGMMA_REGS_96, FCM_WGMMA_OUTS_96, "{%96, %97, %98, %99}", "%100", "%101")
FCM_WGMMA_RS_ALL_N(__nv_bfloat16, "bf16")
FCM_WGMMA_RS_ALL_N(__half, "f16")
#undef FCM_WGMMA_RS_ALL_N
#undef FCM_WGMMA_RS
#undef FCM_WGMMA_OUTS_96
#undef FCM_WGMMA_OUTS_64
#undef FCM_WGMMA_OUTS_48
#undef FCM_WGMMA_OUTS_32
#undef FCM_WGMMA_D8
#undef FCM_WGMMA_REGS_96
#undef FCM_WGMMA_REGS_80
#undef FCM_WGMMA_REGS_64
#undef FCM_WGMMA_REGS_48
#undef FCM_WGMMA_REGS_32
#else
template <typename T, int N>
struct WgmmaRs {
  static __device__ __forceinline__ void run(float (&)[N / 2], const uint32_t (&)[4], uint64_t) {}
};
#endif

}  // namespace jax_fcm
