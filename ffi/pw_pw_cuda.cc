// CUDA handlers of the fused PW -> PW op and of the ConvNeXt MLP around it: decode, check, launch on XLA's
// stream. Allocates nothing and never synchronizes (command-buffer safe).
#include <cuda_runtime.h>

#include <string>

#include "pw_pw_ffi.h"
#include "pw_pw_launch.h"

namespace jax_fcm {
namespace {

ffi::Error pw_pw_cuda_impl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer w1, ffi::AnyBuffer b1,
                           ffi::AnyBuffer w2, ffi::AnyBuffer b2, ffi::Result<ffi::AnyBuffer> y, PwPwAttrs attrs) {
  PwPwCall call;
  if (ffi::Error err = decode_pw_pw(x, w1, b1, w2, b2, y, attrs, /*cuda=*/true, &call); err.failure()) return err;
  const cudaError_t status = dispatch_pw_pw(call.type, call.shape, call.ptrs, call.act1, call.act2, stream);
  if (status != cudaSuccess)
    return ffi::Error::Internal(std::string("jax_fcm pw_pw: CUDA launch failed: ") + cudaGetErrorString(status));
  return ffi::Error::Success();
}

ffi::Error convnext_mlp_cuda_impl(cudaStream_t stream, ffi::AnyBuffer x, ffi::AnyBuffer residual,
                                  ffi::AnyBuffer ln_scale, ffi::AnyBuffer ln_bias, ffi::AnyBuffer w1, ffi::AnyBuffer b1,
                                  ffi::AnyBuffer w2, ffi::AnyBuffer b2, ffi::AnyBuffer layer_scale,
                                  ffi::Result<ffi::AnyBuffer> y, ConvNextMlpAttrs attrs) {
  PwPwCall call;
  if (ffi::Error err = decode_convnext_mlp(x, residual, ln_scale, ln_bias, w1, b1, w2, b2, layer_scale, y, attrs,
                                           /*cuda=*/true, &call);
      err.failure())
    return err;
  const cudaError_t status = dispatch_pw_pw(call.type, call.shape, call.ptrs, call.act1, call.act2, stream);
  if (status == cudaErrorNotSupported)
    return ffi::Error(ffi::ErrorCode::kUnimplemented,
                      "jax_fcm convnext_mlp: the fused kernel runs on Hopper (sm_90a build, compute capability 9.x)");
  if (status != cudaSuccess)
    return ffi::Error::Internal(std::string("jax_fcm convnext_mlp: CUDA launch failed: ") + cudaGetErrorString(status));
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmPwPwCuda, jax_fcm::pw_pw_cuda_impl,
                              jax_fcm::bind_pw_pw(xla::ffi::Ffi::Bind().Ctx<xla::ffi::PlatformStream<cudaStream_t>>()),
                              {xla::ffi::Traits::kCmdBufferCompatible});
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmConvNextMlpCuda, jax_fcm::convnext_mlp_cuda_impl,
                              jax_fcm::bind_convnext_mlp(
                                  xla::ffi::Ffi::Bind().Ctx<xla::ffi::PlatformStream<cudaStream_t>>()),
                              {xla::ffi::Traits::kCmdBufferCompatible});
