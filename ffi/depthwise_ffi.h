// FFI plumbing of the standalone depthwise target (jax_fcm_depthwise): one
// binding for the CPU and CUDA handlers and the checks both run first, so a
// direct call with wrong shapes or attributes is an ffi::Error, not a crash.
#pragma once

#include <cstdint>
#include <utility>

#include "depthwise_params.h"
#include "ffi_binding.h"
#include "xla/ffi/api/ffi.h"

namespace jax_fcm {

namespace ffi = xla::ffi;

struct DepthwiseAttrs {
  int64_t stride, pad_top, pad_bottom, pad_left, pad_right, activation;
};

struct DepthwiseCall {
  ElementType type = ElementType::kF32;
  DepthwiseShape shape;
  DepthwisePointers ptrs;
  int activation = 0;
};

// Arguments: x (N, H, W, C), kernel (k, k, 1, C), bias (C,); result: y (N, Ho, Wo, C).
template <typename Binding>
auto bind_depthwise(Binding binding) {
  return bind_buffers<3, 1, DepthwiseAttrs>(std::move(binding));
}

ffi::Error decode_depthwise(ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::AnyBuffer bias,
                            ffi::Result<ffi::AnyBuffer>& y, const DepthwiseAttrs& attrs, DepthwiseCall* call);

}  // namespace jax_fcm

XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(jax_fcm::DepthwiseAttrs, ::xla::ffi::StructMember<int64_t>("stride"),
                                      ::xla::ffi::StructMember<int64_t>("pad_top"),
                                      ::xla::ffi::StructMember<int64_t>("pad_bottom"),
                                      ::xla::ffi::StructMember<int64_t>("pad_left"),
                                      ::xla::ffi::StructMember<int64_t>("pad_right"),
                                      ::xla::ffi::StructMember<int64_t>("activation"));
