// FFI plumbing of the depthwise backward target (jax_fcm_dw_backward): one
// binding for the CPU and CUDA handlers and the checks both run first, so a
// direct call with wrong shapes or attributes is an ffi::Error, not a crash.
#pragma once

#include <cstdint>
#include <utility>

#include "dw_backward_params.h"
#include "ffi_binding.h"
#include "xla/ffi/api/ffi.h"

namespace jax_fcm {

namespace ffi = xla::ffi;

struct DwBackwardAttrs {
  int64_t stride, pad_top, pad_bottom, pad_left, pad_right;
};

struct DwBackwardCall {
  ElementType type = ElementType::kF32;
  DwBackwardShape shape;
  DwBackwardPointers ptrs;
};

// Arguments: x (N, H, W, C), dy (N, Ho, Wo, C), kernel (k, k, 1, C); results:
// dx (N, H, W, C) and dw_partials float32 (N, groups, k*k + 1, C).
template <typename Binding>
auto bind_dw_backward(Binding binding) {
  return bind_buffers<3, 2, DwBackwardAttrs>(std::move(binding));
}

ffi::Error decode_dw_backward(ffi::AnyBuffer x, ffi::AnyBuffer dy, ffi::AnyBuffer kernel,
                              ffi::Result<ffi::AnyBuffer>& dx, ffi::Result<ffi::AnyBuffer>& dw_partials,
                              const DwBackwardAttrs& attrs, DwBackwardCall* call);

}  // namespace jax_fcm

XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(jax_fcm::DwBackwardAttrs, ::xla::ffi::StructMember<int64_t>("stride"),
                                      ::xla::ffi::StructMember<int64_t>("pad_top"),
                                      ::xla::ffi::StructMember<int64_t>("pad_bottom"),
                                      ::xla::ffi::StructMember<int64_t>("pad_left"),
                                      ::xla::ffi::StructMember<int64_t>("pad_right"));
