// FFI plumbing of the dense conv2d target (jax_fcm_conv2d): one binding for
// the CPU and CUDA handlers and the checks both run first, so a direct call
// with wrong shapes or attributes is an ffi::Error, not a crash.
#pragma once

#include <cstdint>
#include <utility>

#include "conv2d_params.h"
#include "ffi_binding.h"
#include "xla/ffi/api/ffi.h"

namespace jax_fcm {

namespace ffi = xla::ffi;

struct Conv2dAttrs {
  int64_t stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, activation, pw_math;
};

struct Conv2dCall {
  ElementType type = ElementType::kF32;
  PwMath math = kPwMathTf32;
  Conv2dShape shape;
  Conv2dPointers ptrs;
  int activation = 0;
};

// Arguments: x (N, H, W, Cin), kernel (kh, kw, Cin, Cout), bias (Cout,);
// result: y (N, Ho, Wo, Cout).
template <typename Binding>
auto bind_conv2d(Binding binding) {
  return bind_buffers<3, 1, Conv2dAttrs>(std::move(binding));
}

ffi::Error decode_conv2d(ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::AnyBuffer bias, ffi::Result<ffi::AnyBuffer>& y,
                         const Conv2dAttrs& attrs, Conv2dCall* call);

}  // namespace jax_fcm

XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(jax_fcm::Conv2dAttrs, ::xla::ffi::StructMember<int64_t>("stride_h"),
                                      ::xla::ffi::StructMember<int64_t>("stride_w"),
                                      ::xla::ffi::StructMember<int64_t>("pad_top"),
                                      ::xla::ffi::StructMember<int64_t>("pad_bottom"),
                                      ::xla::ffi::StructMember<int64_t>("pad_left"),
                                      ::xla::ffi::StructMember<int64_t>("pad_right"),
                                      ::xla::ffi::StructMember<int64_t>("activation"),
                                      ::xla::ffi::StructMember<int64_t>("pw_math"));
