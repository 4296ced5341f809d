// CUDA handler of the fused DW->PW op: decode, check, launch on XLA's stream.
// It allocates nothing and never synchronizes, and every launch parameter is a
// pure function of shapes and attributes, so XLA may record it into a CUDA
// graph (command buffer).
#include <cuda_runtime.h>

#include <string>

#include "dw_pw_cuda.h"
#include "dw_pw_launch.h"

namespace jax_fcm {

ffi::Error launch_dw_pw_call(const DwPwCall& call, cudaStream_t stream) {
  const DwPwTileConfig& t = call.tile;
  if (!dw_pw_config_supported(call.type, call.shape, t))
    return ffi::Error::InvalidArgument("jax_fcm dw_pw: no compiled kernel for tile (" + std::to_string(t.tile_h) +
                                       ", " + std::to_string(t.tile_w) + ", " + std::to_string(t.tile_n) + ") x " +
                                       std::to_string(t.cout_tiles_per_block) + " channel tiles per block, " +
                                       std::to_string(t.channel_splits) + " channel splits, " +
                                       std::to_string(t.tiles_per_block) + " pixel tiles per block, " +
                                       std::to_string(t.channel_chunk) + "-channel chunks");
  if (!dw_pw_offsets_fit_int32(call.shape))
    return ffi::Error::InvalidArgument(
        "jax_fcm dw_pw: an image, the depthwise taps, the pointwise matrix or an output image has 2**31 elements or "
        "more (the CUDA kernels index them with 32-bit offsets)");
  const cudaError_t status =
      dispatch_dw_pw(call.type, call.math, call.shape, call.tile, call.epilogue, call.ptrs, stream);
  if (status != cudaSuccess)
    return ffi::Error::Internal(std::string("jax_fcm dw_pw: CUDA launch failed: ") + cudaGetErrorString(status));
  return ffi::Error::Success();
}

namespace {

ffi::Error dw_pw_cuda_impl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias,
                          ffi::AnyBuffer pw_kernel, ffi::AnyBuffer pw_bias, ffi::Result<ffi::AnyBuffer> y,
                          DwPwAttrs attrs) {
  DwPwCall call;
  if (ffi::Error err = decode_dw_pw(x, dw_kernel, dw_bias, pw_kernel, pw_bias, y, attrs, &call); err.failure())
    return err;
  return launch_dw_pw_call(call, stream);
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmDwPwCuda, jax_fcm::dw_pw_cuda_impl,
                              jax_fcm::bind_dw_pw(xla::ffi::Ffi::Bind().Ctx<xla::ffi::PlatformStream<cudaStream_t>>()),
                              {xla::ffi::Traits::kCmdBufferCompatible});
