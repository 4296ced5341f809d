// FFI plumbing of the fused PW -> PW target (jax_fcm_pw_pw): one binding for
// the CPU and CUDA handlers and the checks both run first, so a direct call
// with wrong shapes or attributes is an ffi::Error, not a crash.
#pragma once

#include <cstdint>
#include <utility>

#include "pw_pw_params.h"
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
  return std::move(binding)
      .template Arg<ffi::AnyBuffer>()
      .template Arg<ffi::AnyBuffer>()
      .template Arg<ffi::AnyBuffer>()
      .template Arg<ffi::AnyBuffer>()
      .template Arg<ffi::AnyBuffer>()
      .template Ret<ffi::AnyBuffer>()
      .template Attrs<PwPwAttrs>();
}

// `cuda`: also the CUDA kernel's limits (pw_pw_shape_supported).
ffi::Error decode_pw_pw(ffi::AnyBuffer x, ffi::AnyBuffer w1, ffi::AnyBuffer b1, ffi::AnyBuffer w2,
                        ffi::AnyBuffer b2, ffi::Result<ffi::AnyBuffer>& y, const PwPwAttrs& attrs, bool cuda,
                        PwPwCall* call);

}  // namespace jax_fcm

XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(jax_fcm::PwPwAttrs, ::xla::ffi::StructMember<int64_t>("pw1_activation"),
                                      ::xla::ffi::StructMember<int64_t>("pw2_activation"));
