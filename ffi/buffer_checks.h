// Buffer checks shared by the FFI decoders: shape comparison, shapes in error
// messages, and the element types the kernels are compiled for.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "dw_pw_params.h"
#include "xla/ffi/api/ffi.h"

namespace jax_fcm {

inline std::string dims_str(xla::ffi::AnyBuffer b) {
  std::string s = "(";
  const auto dims = b.dimensions();
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + (dims.size() == 1 ? ",)" : ")");
}

// "(n, h, w, c)": an expected NHWC shape in messages.
inline std::string nhwc_str(int64_t n, int64_t h, int64_t w, int64_t c) {
  return "(" + std::to_string(n) + ", " + std::to_string(h) + ", " + std::to_string(w) + ", " + std::to_string(c) + ")";
}

// Output pixels of a k-wide window with the given stride over `size`
// padded by `before` and `after`; 0 when the padded input is narrower than k.
inline int64_t padded_output_size(int64_t size, int64_t before, int64_t after, int64_t k, int64_t stride) {
  const int64_t span = size + before + after - k;
  return span < 0 ? 0 : span / stride + 1;
}

inline bool has_dims(xla::ffi::AnyBuffer b, std::initializer_list<int64_t> want) {
  const auto dims = b.dimensions();
  if (dims.size() != want.size()) return false;
  size_t i = 0;
  for (int64_t d : want)
    if (dims[i++] != d) return false;
  return true;
}

// float32, bfloat16 or float16; false for anything else.
inline bool kernel_element_type(xla::ffi::DataType dtype, ElementType* type) {
  switch (dtype) {
    case xla::ffi::DataType::F32: *type = ElementType::kF32; return true;
    case xla::ffi::DataType::BF16: *type = ElementType::kBF16; return true;
    case xla::ffi::DataType::F16: *type = ElementType::kF16; return true;
    default: return false;
  }
}

// x NHWC and its (k, k, 1, C) depthwise kernel with k in {3, 5, 7}: fills
// s's n, h, w, c and kernel; returns "" when they fit, else what is wrong,
// naming the kernel operand as its target does (the depthwise, depthwise
// backward and DW -> PW decoders share these checks).
template <class Shape>
std::string check_depthwise_operands(xla::ffi::AnyBuffer x, xla::ffi::AnyBuffer kernel, Shape* s,
                                     const std::string& kernel_name = "kernel") {
  if (x.dimensions().size() != 4) return "x must be NHWC (rank 4), got " + dims_str(x);
  const auto xd = x.dimensions();
  s->n = xd[0], s->h = xd[1], s->w = xd[2], s->c = xd[3];
  if (kernel.dimensions().size() != 4) return kernel_name + " must be (k, k, 1, C), got " + dims_str(kernel);
  s->kernel = kernel.dimensions()[0];
  if (s->kernel != 3 && s->kernel != 5 && s->kernel != 7) return "kernel size must be 3, 5 or 7";
  if (!has_dims(kernel, {s->kernel, s->kernel, 1, s->c}))
    return kernel_name + " must be (k, k, 1, C=" + std::to_string(s->c) + "), got " + dims_str(kernel);
  return "";
}

}  // namespace jax_fcm
