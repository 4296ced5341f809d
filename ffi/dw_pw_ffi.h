// Shared FFI plumbing of the dw_pw targets: one argument/attribute binding for
// the CPU and CUDA handlers, and the checks both run before touching memory.
// The Python wrapper validates first; these checks keep a direct call of the
// target (wrong shapes, bad attributes) an ffi::Error instead of a crash.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "buffer_checks.h"
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

// The attributes every fused DW -> PW target shares (stride, padding, kernel
// tile), checked against call->shape (n, h, w, c, kernel, cout filled in) and
// the result buffer y: fills the stride, padding, output size and tile of
// call. Returns "" when they fit, else what is wrong.
template <class Attrs>
std::string decode_window_and_tile(const Attrs& a, ffi::AnyBuffer y, DwPwCall* call) {
  DwPwShape& s = call->shape;
  if (a.stride != 1 && a.stride != 2) return "stride must be 1 or 2";
  if (a.pad_top < 0 || a.pad_bottom < 0 || a.pad_left < 0 || a.pad_right < 0) return "padding must be >= 0";
  s.stride = a.stride, s.pad_top = a.pad_top, s.pad_left = a.pad_left;
  s.ho = padded_output_size(s.h, a.pad_top, a.pad_bottom, s.kernel, s.stride);
  s.wo = padded_output_size(s.w, a.pad_left, a.pad_right, s.kernel, s.stride);
  if (!has_dims(y, {s.n, s.ho, s.wo, s.cout}))
    return "result must be " + nhwc_str(s.n, s.ho, s.wo, s.cout) + ", got " + dims_str(y);
  if (a.tile_h <= 0 || a.tile_w <= 0 || a.tile_n <= 0 || a.cout_tiles_per_block <= 0 || a.channel_splits <= 0)
    return "tile sizes must be positive";
  if (a.tiles_per_block < 0) return "tiles_per_block must be >= 0 (0: one wave of resident blocks)";
  if (a.channel_chunk != 32 && a.channel_chunk != 64) return "channel_chunk must be 32 or 64";
  call->tile = DwPwTileConfig{a.tile_h,         a.tile_w,          a.tile_n,       a.cout_tiles_per_block,
                              a.channel_splits, a.tiles_per_block, a.channel_chunk};
  return "";
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
