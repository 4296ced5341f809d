// FFI plumbing of the int8 fused PW -> PW target (jax_fcm.pw_pw_int8): one
// binding for its CPU and CUDA handlers, and the checks both run first.
// Operands: x (int8 NHWC, Cin channels), pw1_kernel (int8 (hidden, Cin): the
// first 1x1 kernel transposed, rows per output channel), pw1_bias (int32
// (hidden,)), pw1_multiplier (float32 (hidden,)), pw2_kernel (int8 (Cout,
// hidden)), pw2_bias (int32 (Cout,)), pw2_multiplier (float32 (Cout,));
// result y (int8 NHWC, Cout channels). The scheme is documented in
// jax_fcm/quantization.py.
#pragma once

#include <cstdint>
#include <utility>

#include "pw_pw_ffi.h"

namespace jax_fcm {

struct PwPwInt8Attrs {
  int64_t pw1_qmin, pw1_qmax, pw2_qmin, pw2_qmax;  // clamp ranges of the requantized values
};

template <typename Binding>
auto bind_pw_pw_int8(Binding binding) {
  return bind_buffers<7, 1, PwPwInt8Attrs>(std::move(binding));
}

// `cuda`: also the CUDA kernel's limits (pw_pw_shape_supported).
ffi::Error decode_pw_pw_int8(ffi::AnyBuffer x, ffi::AnyBuffer w1, ffi::AnyBuffer b1, ffi::AnyBuffer m1,
                             ffi::AnyBuffer w2, ffi::AnyBuffer b2, ffi::AnyBuffer m2, ffi::Result<ffi::AnyBuffer>& y,
                             const PwPwInt8Attrs& attrs, bool cuda, PwPwCall* call);

}  // namespace jax_fcm

XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(jax_fcm::PwPwInt8Attrs, ::xla::ffi::StructMember<int64_t>("pw1_qmin"),
                                      ::xla::ffi::StructMember<int64_t>("pw1_qmax"),
                                      ::xla::ffi::StructMember<int64_t>("pw2_qmin"),
                                      ::xla::ffi::StructMember<int64_t>("pw2_qmax"));
