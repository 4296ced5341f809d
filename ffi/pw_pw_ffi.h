// FFI plumbing of the fused PW -> PW targets (jax_fcm_pw_pw, and
// jax_fcm_convnext_mlp: the same MLP inside a ConvNeXt block): one binding for
// the CPU and CUDA handlers and the checks both run first, so a direct call
// with wrong shapes or attributes is an ffi::Error, not a crash.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "pw_pw_params.h"
#include "ffi_binding.h"
#include "xla/ffi/api/ffi.h"

namespace jax_fcm {

namespace ffi = xla::ffi;

struct PwPwAttrs {
  int64_t pw1_activation, pw2_activation;
};

struct PwPwCall {
  ElementType type = ElementType::kF32;
  PwPwShape shape;
  PwPwPointers ptrs;
  int act1 = 0, act2 = 0;
};

// Arguments: x (N, H, W, Cin), pw1_kernel (1, 1, Cin, hidden), pw1_bias
// (hidden,), pw2_kernel (1, 1, hidden, Cout), pw2_bias (Cout,); result: y
// (N, H, W, Cout).
template <typename Binding>
auto bind_pw_pw(Binding binding) {
  return bind_buffers<5, 1, PwPwAttrs>(std::move(binding));
}

// call->shape for `pixels` (N*H*W) through Cin -> hidden -> Cout (call->type
// set): "" when the channel counts are positive and, with `cuda`, the CUDA
// kernel takes them (pw_pw_shape_supported); else what is wrong. Shared by
// the float and int8 decoders.
std::string set_pw_pw_shape(int64_t pixels, int64_t cin, int64_t hidden, int64_t cout, bool cuda, PwPwCall* call);

// `cuda`: also the CUDA kernel's limits (pw_pw_shape_supported).
ffi::Error decode_pw_pw(ffi::AnyBuffer x, ffi::AnyBuffer w1, ffi::AnyBuffer b1, ffi::AnyBuffer w2,
                        ffi::AnyBuffer b2, ffi::Result<ffi::AnyBuffer>& y, const PwPwAttrs& attrs, bool cuda,
                        PwPwCall* call);

// The ConvNeXt block's tail around the MLP (jax_fcm_convnext_mlp):
// y = residual + layer_scale * (gelu(LayerNorm(x) . w1 + b1) . w2 + b2).
struct ConvNextMlpAttrs {
  int64_t pw1_activation;
  float eps;
};

// Arguments: x (N, H, W, C) (the depthwise conv's output), residual
// (N, H, W, C) (the block's input), ln_scale (C,), ln_bias (C,), pw1_kernel
// (1, 1, C, hidden), pw1_bias (hidden,), pw2_kernel (1, 1, hidden, C),
// pw2_bias (C,), layer_scale (C,); result: y (N, H, W, C).
template <typename Binding>
auto bind_convnext_mlp(Binding binding) {
  return bind_buffers<9, 1, ConvNextMlpAttrs>(std::move(binding));
}

// The pw_pw checks (decode_pw_pw) plus the block ends' operands; fills
// call->ptrs.block. `cuda`: also what the CUDA kernel takes (16-bit types,
// channel counts multiples of 8).
ffi::Error decode_convnext_mlp(ffi::AnyBuffer x, ffi::AnyBuffer residual, ffi::AnyBuffer ln_scale,
                               ffi::AnyBuffer ln_bias, ffi::AnyBuffer w1, ffi::AnyBuffer b1, ffi::AnyBuffer w2,
                               ffi::AnyBuffer b2, ffi::AnyBuffer layer_scale, ffi::Result<ffi::AnyBuffer>& y,
                               const ConvNextMlpAttrs& attrs, bool cuda, PwPwCall* call);

}  // namespace jax_fcm

XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(jax_fcm::ConvNextMlpAttrs, ::xla::ffi::StructMember<int64_t>("pw1_activation"),
                                      ::xla::ffi::StructMember<float>("eps"));
XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(jax_fcm::PwPwAttrs, ::xla::ffi::StructMember<int64_t>("pw1_activation"),
                                      ::xla::ffi::StructMember<int64_t>("pw2_activation"));
