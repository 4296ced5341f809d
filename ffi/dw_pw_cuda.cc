// CUDA handler of the fused DW->PW op: decode, check, launch on XLA's stream.
// It allocates nothing and never synchronizes, and every launch parameter is a
// pure function of shapes and attributes, so XLA may record it into a CUDA
// graph (command buffer).
#include <cuda_runtime.h>

#include <string>

#include "dw_pw_ffi.h"
#include "dw_pw_launch.h"

namespace jax_fcm {
namespace {

ffi::Error dw_pw_cuda_impl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias,
                           ffi::AnyBuffer pw_kernel, ffi::AnyBuffer pw_bias, ffi::Result<ffi::AnyBuffer> y,
                           int64_t stride, int64_t pad_top, int64_t pad_bottom, int64_t pad_left, int64_t pad_right,
                           int64_t dw_activation, int64_t pw_activation, int64_t pw_math, int64_t tile_h,
                           int64_t tile_w, int64_t tile_n) {
  DwPwCall call;
  const DwPwAttrs attrs{stride,        pad_top, pad_bottom, pad_left, pad_right, dw_activation,
                        pw_activation, pw_math, tile_h,     tile_w,   tile_n};
  if (ffi::Error err = decode_dw_pw(x, dw_kernel, dw_bias, pw_kernel, pw_bias, y, attrs, &call); err.failure())
    return err;
  if (!dw_pw_config_supported(call.shape, call.tile))
    return ffi::Error::InvalidArgument("jax_fcm dw_pw: no compiled kernel for tile (" + std::to_string(tile_h) +
                                       ", " + std::to_string(tile_w) + ", " + std::to_string(tile_n) + ")");
  const cudaError_t status =
      dispatch_dw_pw(call.type, call.math, call.shape, call.tile, call.epilogue, call.ptrs, stream);
  if (status != cudaSuccess)
    return ffi::Error::Internal(std::string("jax_fcm dw_pw: CUDA launch failed: ") + cudaGetErrorString(status));
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmDwPwCuda, jax_fcm::dw_pw_cuda_impl,
                              jax_fcm::bind_dw_pw(xla::ffi::Ffi::Bind().Ctx<xla::ffi::PlatformStream<cudaStream_t>>()),
                              {xla::ffi::Traits::kCmdBufferCompatible});
