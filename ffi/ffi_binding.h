// The handler signature every jax_fcm FFI target shares: AnyBuffer
// arguments, AnyBuffer results, then the op's attribute struct. Each op's
// bind_* (one binding for its CPU and CUDA handlers) names its counts here
// instead of spelling out the chain.
#pragma once

#include <utility>

#include "xla/ffi/api/ffi.h"

namespace jax_fcm {

// A binding cannot be moved or copied (its constructors are private), only
// extended as a temporary: taken by reference, each step returns a new one.
template <int Args, int Rets, class Attrs, typename Binding>
auto bind_buffers(Binding&& binding) {
  if constexpr (Args > 0) {
    return bind_buffers<Args - 1, Rets, Attrs>(std::move(binding).template Arg<xla::ffi::AnyBuffer>());
  } else if constexpr (Rets > 0) {
    return bind_buffers<0, Rets - 1, Attrs>(std::move(binding).template Ret<xla::ffi::AnyBuffer>());
  } else {
    return std::move(binding).template Attrs<Attrs>();
  }
}

}  // namespace jax_fcm
