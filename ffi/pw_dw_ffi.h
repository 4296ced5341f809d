// Shared FFI plumbing of the pw_dw target (1x1 expand -> depthwise, the MBConv
// kernel without its projection): one binding for the CPU and CUDA handlers
// and the checks both run before touching memory.
#pragma once

#include <cstdint>
#include <utility>

#include "ffi_binding.h"
#include "mbconv_ffi.h"
#include "xla/ffi/api/ffi.h"

namespace jax_fcm {

struct PwDwAttrs {
  int64_t stride, pad_top, pad_bottom, pad_left, pad_right;
  int64_t pw_activation, dw_activation, pw_math;
};

// Arguments: x, pw_kernel, pw_bias, dw_kernel, dw_bias; result: y (the
// depthwise output, Cmid channels). Names match jax_fcm/pw_dw_op.py.
template <typename Binding>
auto bind_pw_dw(Binding binding) {
  return bind_buffers<5, 1, PwDwAttrs>(std::move(binding));
}

// An MbconvCall with shape.inner.cout = Cmid, no projection pointers.
ffi::Error decode_pw_dw(ffi::AnyBuffer x, ffi::AnyBuffer pw_kernel, ffi::AnyBuffer pw_bias, ffi::AnyBuffer dw_kernel,
                        ffi::AnyBuffer dw_bias, ffi::Result<ffi::AnyBuffer>& y, const PwDwAttrs& attrs,
                        MbconvCall* call);

}  // namespace jax_fcm

XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(jax_fcm::PwDwAttrs, ::xla::ffi::StructMember<int64_t>("stride"),
                                      ::xla::ffi::StructMember<int64_t>("pad_top"),
                                      ::xla::ffi::StructMember<int64_t>("pad_bottom"),
                                      ::xla::ffi::StructMember<int64_t>("pad_left"),
                                      ::xla::ffi::StructMember<int64_t>("pad_right"),
                                      ::xla::ffi::StructMember<int64_t>("pw_activation"),
                                      ::xla::ffi::StructMember<int64_t>("dw_activation"),
                                      ::xla::ffi::StructMember<int64_t>("pw_math"));
