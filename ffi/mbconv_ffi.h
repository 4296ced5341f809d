// Shared FFI plumbing of the mbconv targets: one argument/attribute binding
// for the CPU and CUDA handlers and the checks both run before touching
// memory, so a direct call with bad shapes or attributes is an ffi::Error.
#pragma once

#include <cstdint>
#include <utility>

#include "mbconv_params.h"
#include "ffi_binding.h"
#include "xla/ffi/api/ffi.h"

namespace jax_fcm {

namespace ffi = xla::ffi;

struct MbconvCall {
  ElementType type = ElementType::kF32;
  PwMath math = kPwMathTf32;
  MbconvShape shape;
  int tile_n = 64;
  int channel_splits = 1;
  MbconvEpilogue epilogue;
  MbconvPointers ptrs;
};

struct MbconvAttrs {
  int64_t stride, pad_top, pad_bottom, pad_left, pad_right;
  int64_t activation, residual, pw_math, tile_n, channel_splits;
};

// Arguments: x, expand_kernel, expand_bias, dw_kernel, dw_bias,
// project_kernel, project_bias; result: y. Names match jax_fcm/mbconv_op.py.
template <typename Binding>
auto bind_mbconv(Binding binding) {
  return bind_buffers<7, 1, MbconvAttrs>(std::move(binding));
}

// The window attributes mbconv and pw_dw share.
struct WindowAttrs {
  int64_t stride, pad_top, pad_bottom, pad_left, pad_right, pw_math;
};

// x, the expansion and the depthwise conv (shape.inner without cout, math,
// the first five pointers): the checks mbconv and pw_dw share; errors name op.
ffi::Error decode_expand_depthwise(const char* op, ffi::AnyBuffer x, ffi::AnyBuffer expand_kernel,
                                   ffi::AnyBuffer expand_bias, ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias,
                                   const WindowAttrs& attrs, MbconvCall* call);

ffi::Error decode_mbconv(ffi::AnyBuffer x, ffi::AnyBuffer expand_kernel, ffi::AnyBuffer expand_bias,
                         ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias, ffi::AnyBuffer project_kernel,
                         ffi::AnyBuffer project_bias, ffi::Result<ffi::AnyBuffer>& y, const MbconvAttrs& attrs,
                         MbconvCall* call);

}  // namespace jax_fcm

XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(jax_fcm::MbconvAttrs, ::xla::ffi::StructMember<int64_t>("stride"),
                                      ::xla::ffi::StructMember<int64_t>("pad_top"),
                                      ::xla::ffi::StructMember<int64_t>("pad_bottom"),
                                      ::xla::ffi::StructMember<int64_t>("pad_left"),
                                      ::xla::ffi::StructMember<int64_t>("pad_right"),
                                      ::xla::ffi::StructMember<int64_t>("activation"),
                                      ::xla::ffi::StructMember<int64_t>("residual"),
                                      ::xla::ffi::StructMember<int64_t>("pw_math"),
                                      ::xla::ffi::StructMember<int64_t>("tile_n"),
                                      ::xla::ffi::StructMember<int64_t>("channel_splits"));
