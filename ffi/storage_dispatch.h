// The CPU handlers' one switch from the runtime element type to the storage
// type their loops are templated on.
#pragma once

#include "dw_pw_params.h"
#include "float16_convert.h"

namespace jax_fcm {

template <typename Storage>
struct StorageTag {
  using type = Storage;
};

// f(StorageTag<float | BFloat16 | Float16>{}) for the element type.
template <class F>
void with_storage_type(ElementType type, F&& f) {
  switch (type) {
    case ElementType::kF32: f(StorageTag<float>{}); break;
    case ElementType::kBF16: f(StorageTag<BFloat16>{}); break;
    case ElementType::kF16: f(StorageTag<Float16>{}); break;
  }
}

}  // namespace jax_fcm
