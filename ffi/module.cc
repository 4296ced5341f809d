// The nanobind extension: FFI handler capsules per platform, plus what the
// Python side needs to know about how the extension was built.
#include <nanobind/nanobind.h>

#include "handlers.h"

namespace nb = nanobind;

namespace {

template <typename Fn>
nb::capsule handler_capsule(Fn* fn) {
  static_assert(std::is_invocable_r_v<XLA_FFI_Error*, Fn, XLA_FFI_CallFrame*>, "not an XLA FFI handler");
  return nb::capsule(reinterpret_cast<void*>(fn));
}

}  // namespace

NB_MODULE(_jax_fcm, m) {
  m.doc() = "jax_fcm native extension: XLA FFI handlers for fused depthwise/pointwise convolutions";
  m.def("cpu_targets", []() {
    nb::dict d;
    d["jax_fcm_dw_pw"] = handler_capsule(JaxFcmDwPwCpu);
    return d;
  });
  m.def("cuda_targets", []() {
    nb::dict d;
#ifdef JAX_FCM_WITH_CUDA
    d["jax_fcm_dw_pw"] = handler_capsule(JaxFcmDwPwCuda);
#endif
    return d;
  });
#ifdef JAX_FCM_WITH_CUDA
  m.attr("built_with_cuda") = true;
#else
  m.attr("built_with_cuda") = false;
#endif
}
