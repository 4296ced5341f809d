// Host-side entry points of the fused MBConv CUDA kernels (no device code).
#pragma once

#include <cuda_runtime.h>

#include "mbconv_params.h"

namespace jax_fcm {

// Output channels per block (the projection's N tile) that are compiled.
inline constexpr int kMbconvTileNs[] = {32, 64, 96, 128, 160};

// One compiled configuration; defined in mbconv_kernel.cuh. splits: 2, 4 or
// 8 blocks per cluster share each output tile, each expanding a slice of the
// Cmid chunks (their partial projections summed through distributed shared
// memory); 1, or where clusters or chunks are missing, none.
template <typename T, int Math, int K, int S, int TN>
cudaError_t launch_mbconv(const MbconvShape& shape, const MbconvEpilogue& epilogue, const MbconvPointers& ptrs,
                          int splits, cudaStream_t stream);

// pw_dw (the expansion and the depthwise conv, no projection): the same
// kernel with Project = false; its geometry is that of the narrowest tile.
// The launcher picks the chunk groups per pixel tile.
inline constexpr int kPwDwTileN = 32;
template <typename T, int Math, int K, int S>
cudaError_t launch_pw_dw(const MbconvShape& shape, const MbconvEpilogue& epilogue, const MbconvPointers& ptrs,
                         cudaStream_t stream);

// Shared memory one block of this configuration needs (bytes).
int mbconv_smem_bytes(ElementType type, int kernel, int stride, int tile_n, int splits, int64_t cin);

// Whether dispatch_mbconv has a kernel for this configuration.
bool mbconv_config_supported(const MbconvShape& shape, int tile_n, int splits);

// Picks the instantiation; cudaErrorInvalidValue for one that was not compiled,
// cudaErrorInvalidConfiguration when a block's shared memory does not fit.
cudaError_t dispatch_mbconv(ElementType type, PwMath math, const MbconvShape& shape, int tile_n, int splits,
                            const MbconvEpilogue& epilogue, const MbconvPointers& ptrs, cudaStream_t stream);

// pw_dw's counterparts (k in {3, 5, 7}, stride 1 or 2; shape.inner.cout = Cmid).
int pw_dw_smem_bytes(ElementType type, int kernel, int stride, int64_t cin);
cudaError_t dispatch_pw_dw(ElementType type, PwMath math, const MbconvShape& shape, const MbconvEpilogue& epilogue,
                           const MbconvPointers& ptrs, cudaStream_t stream);

}  // namespace jax_fcm
