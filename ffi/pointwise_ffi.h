// FFI plumbing of the standalone pointwise target (jax_fcm_pointwise): one
// binding for the CPU and CUDA handlers and the checks both run first, so a
// direct call with wrong shapes or attributes is an ffi::Error, not a crash.
#pragma once

#include <cstdint>
#include <utility>

#include "pointwise_params.h"
#include "ffi_binding.h"
#include "xla/ffi/api/ffi.h"

namespace jax_fcm {

namespace ffi = xla::ffi;

struct PointwiseAttrs {
  int64_t activation, pw_math;
};

struct PointwiseCall {
  ElementType type = ElementType::kF32;
  PwMath math = kPwMathTf32;
  PointwiseShape shape;
  PointwisePointers ptrs;
  int activation = 0;
};

// Arguments: x (N, H, W, Cin), kernel (1, 1, Cin, Cout), bias (Cout,);
// result: y (N, H, W, Cout).
template <typename Binding>
auto bind_pointwise(Binding binding) {
  return bind_buffers<3, 1, PointwiseAttrs>(std::move(binding));
}

ffi::Error decode_pointwise(ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::AnyBuffer bias,
                            ffi::Result<ffi::AnyBuffer>& y, const PointwiseAttrs& attrs, PointwiseCall* call);

}  // namespace jax_fcm

XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(jax_fcm::PointwiseAttrs, ::xla::ffi::StructMember<int64_t>("activation"),
                                      ::xla::ffi::StructMember<int64_t>("pw_math"));
