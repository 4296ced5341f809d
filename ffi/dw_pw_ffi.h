// Shared FFI plumbing of the dw_pw targets: one argument/attribute binding for
// the CPU and CUDA handlers, and the checks both run before touching memory.
// The Python wrapper validates first; these checks keep a direct call of the
// target (wrong shapes, bad attributes) an ffi::Error instead of a crash.
#pragma once

#include <cstdint>
#include <utility>

#include "dw_pw_params.h"
#include "ffi_binding.h"
#include "xla/ffi/api/ffi.h"

namespace jax_fcm {

namespace ffi = xla::ffi;

struct DwPwCall {
  ElementType type = ElementType::kF32;
  PwMath math = kPwMathTf32;
  DwPwShape shape;
  DwPwTileConfig tile;
  DwPwEpilogue epilogue;
  DwPwPointers ptrs;
};

struct DwPwAttrs {
  int64_t stride, pad_top, pad_bottom, pad_left, pad_right;
  int64_t dw_activation, pw_activation, pw_math;
  int64_t tile_h, tile_w, tile_n, cout_tiles_per_block, channel_splits, tiles_per_block, channel_chunk;
};

// Arguments: x, dw_kernel, dw_bias, pw_kernel, pw_bias; result: y; attributes
// decoded into DwPwAttrs (registered below). Names match jax_fcm/dw_pw_op.py.
template <typename Binding>
auto bind_dw_pw(Binding binding) {
  return bind_buffers<5, 1, DwPwAttrs>(std::move(binding));
}

// Validates buffers and attributes and fills a DwPwCall.
ffi::Error decode_dw_pw(ffi::AnyBuffer x, ffi::AnyBuffer dw_kernel, ffi::AnyBuffer dw_bias, ffi::AnyBuffer pw_kernel,
                        ffi::AnyBuffer pw_bias, ffi::Result<ffi::AnyBuffer>& y, const DwPwAttrs& attrs,
                        DwPwCall* call);

}  // namespace jax_fcm

XLA_FFI_REGISTER_STRUCT_ATTR_DECODING(jax_fcm::DwPwAttrs, ::xla::ffi::StructMember<int64_t>("stride"),
                                      ::xla::ffi::StructMember<int64_t>("pad_top"),
                                      ::xla::ffi::StructMember<int64_t>("pad_bottom"),
                                      ::xla::ffi::StructMember<int64_t>("pad_left"),
                                      ::xla::ffi::StructMember<int64_t>("pad_right"),
                                      ::xla::ffi::StructMember<int64_t>("dw_activation"),
                                      ::xla::ffi::StructMember<int64_t>("pw_activation"),
                                      ::xla::ffi::StructMember<int64_t>("pw_math"),
                                      ::xla::ffi::StructMember<int64_t>("tile_h"),
                                      ::xla::ffi::StructMember<int64_t>("tile_w"),
                                      ::xla::ffi::StructMember<int64_t>("tile_n"),
                                      ::xla::ffi::StructMember<int64_t>("cout_tiles_per_block"),
                                      ::xla::ffi::StructMember<int64_t>("channel_splits"),
                                      ::xla::ffi::StructMember<int64_t>("tiles_per_block"),
                                      ::xla::ffi::StructMember<int64_t>("channel_chunk"));
