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

}  // namespace jax_fcm
