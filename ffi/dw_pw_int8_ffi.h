// FFI plumbing of the int8 fused DW -> PW target (jax_fcm.dw_pw_int8): one
// binding for its CPU and CUDA handlers, and the checks both run first.
// Operands: x (int8 NHWC), dw_kernel (int8 (k, k, 1, C)), dw_bias (int32
// (C,)), dw_multiplier (float32 (C,)), pw_kernel (int8 (Cout, C): the 1x1
// kernel transposed, rows per output channel), pw_bias (int32 (Cout,)),
// pw_multiplier (float32 (Cout,)); result y (int8 NHWC). The scheme is
// documented in jax_fcm/quantization.py.
#pragma once

#include <cstdint>
#include <utility>

#include "dw_pw_ffi.h"

namespace jax_fcm {

struct DwPwInt8Attrs {
  int64_t stride, pad_top, pad_bottom, pad_left, pad_right;
  int64_t dw_qmin, dw_qmax, pw_qmin, pw_qmax;  // clamp ranges of the requantized values
  int64_t tile_h, tile_w, tile_n, cout_tiles_per_block, channel_splits, tiles_per_block, channel_chunk;
};

template <typename Binding>
auto bind_dw_pw_int8(Binding binding) {
  return bind_buffers<7, 1, DwPwInt8Attrs>(std::move(binding));
}

ffi::Error decode_dw_pw_int8(ffi::AnyBuffer x, ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias,
                             ffi::AnyBuffer dw_multiplier, ffi::AnyBuffer pw_kernel, ffi::AnyBuffer pw_bias,
                             ffi::AnyBuffer pw_multiplier, ffi::Result<ffi::AnyBuffer>& y, const DwPwInt8Attrs& attrs,
                             DwPwCall* call);

}  // namespace jax_fcm

XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(jax_fcm::DwPwInt8Attrs, ::xla::ffi::StructMember<int64_t>("stride"),
                                      ::xla::ffi::StructMember<int64_t>("pad_top"),
                                      ::xla::ffi::StructMember<int64_t>("pad_bottom"),
                                      ::xla::ffi::StructMember<int64_t>("pad_left"),
                                      ::xla::ffi::StructMember<int64_t>("pad_right"),
                                      ::xla::ffi::StructMember<int64_t>("dw_qmin"),
                                      ::xla::ffi::StructMember<int64_t>("dw_qmax"),
                                      ::xla::ffi::StructMember<int64_t>("pw_qmin"),
                                      ::xla::ffi::StructMember<int64_t>("pw_qmax"),
                                      ::xla::ffi::StructMember<int64_t>("tile_h"),
                                      ::xla::ffi::StructMember<int64_t>("tile_w"),
                                      ::xla::ffi::StructMember<int64_t>("tile_n"),
                                      ::xla::ffi::StructMember<int64_t>("cout_tiles_per_block"),
                                      ::xla::ffi::StructMember<int64_t>("channel_splits"),
                                      ::xla::ffi::StructMember<int64_t>("tiles_per_block"),
                                      ::xla::ffi::StructMember<int64_t>("channel_chunk"));
