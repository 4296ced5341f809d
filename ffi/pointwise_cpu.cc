// CPU handler of the standalone pointwise convolution. Same contract as the
// CUDA kernel: fp32 accumulation, bias and activation, one rounding (full
// fp32 products for float32: the CPU has no TF32).
#include <vector>

#include "float16_convert.h"
#include "pointwise_cpu_core.h"
#include "pointwise_ffi.h"
#include "storage_dispatch.h"

namespace jax_fcm {
namespace {

template <typename Storage>
void pointwise_cpu(const PointwiseCall& call) {
  const PointwiseShape& s = call.shape;
  const std::vector<float> w = to_floats<Storage>(call.ptrs.kernel, s.cin * s.cout);
  const std::vector<float> bias = to_floats<Storage>(call.ptrs.bias, s.cout);
  pointwise_rows_cpu(static_cast<const Storage*>(call.ptrs.x), s.m, s.cin, s.cout, w.data(), bias.data(),
                     call.activation, static_cast<Storage*>(call.ptrs.y));
}

ffi::Error pointwise_cpu_impl(ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::AnyBuffer bias,
                              ffi::Result<ffi::AnyBuffer> y, PointwiseAttrs attrs) {
  PointwiseCall call;
  if (ffi::Error err = decode_pointwise(x, kernel, bias, y, attrs, &call); err.failure()) return err;
  with_storage_type(call.type, [&](auto tag) { pointwise_cpu<typename decltype(tag)::type>(call); });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_fcm

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxFcmPointwiseCpu, jax_fcm::pointwise_cpu_impl,
                              jax_fcm::bind_pointwise(xla::ffi::Ffi::Bind()));
