// One launch path for the kernels whose blocks may form thread-block clusters
// (channel splits adding their partial sums through distributed shared memory).
#pragma once

#include <cuda_runtime.h>

#include <utility>

namespace jax_fcm {

// kernel<<<grid, threads, smem_bytes, stream>>>(args...), as clusters of
// cluster_x consecutive blocks along x when cluster_x > 1 (sm_90+; grid.x a
// multiple of it), then the launch error if any.
template <class... Params, class... Args>
cudaError_t launch_clustered(void (*kernel)(Params...), dim3 grid, int threads, int smem_bytes, int cluster_x,
                             cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = dim3(unsigned(threads));
  config.dynamicSmemBytes = size_t(smem_bytes);
  config.stream = stream;
  cudaLaunchAttribute cluster;
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = unsigned(cluster_x);
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  config.attrs = &cluster;
  config.numAttrs = cluster_x > 1 ? 1 : 0;
  if (cudaError_t err = cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...); err != cudaSuccess)
    return err;
  return cudaGetLastError();
}

}  // namespace jax_fcm
