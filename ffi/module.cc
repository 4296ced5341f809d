// The nanobind extension: FFI handler capsules per platform, plus what the
// Python side needs to know about how the extension was built.
#include <nanobind/nanobind.h>

#include "depthwise_params.h"
#include "handlers.h"
#include "pointwise_params.h"
#include "pw_pw_params.h"
#ifdef JAX_FCM_WITH_CUDA
#include "device_attributes.h"
#endif

namespace nb = nanobind;

namespace {

template <typename Fn>
nb::capsule handler_capsule(Fn* fn) {
  static_assert(std::is_invocable_r_v<XLA_FFI_Error*, Fn, XLA_FFI_CallFrame*>, "not an XLA FFI handler");
  return nb::capsule(reinterpret_cast<void*>(fn));
}

}  // namespace

NB_MODULE(_jax_fcm, m) {
  m.doc() =
      "jax_fcm native extension: XLA FFI handlers for fused depthwise/pointwise convolutions, MBConv blocks and "
      "standalone depthwise, pointwise and dense convolutions, fused PW -> PW and PW -> DW pairs, and the int8 "
      "fused depthwise/pointwise and pointwise/pointwise convolutions";
  m.def("cpu_targets", []() {
    nb::dict d;
    d["jax_fcm_dw_pw"] = handler_capsule(JaxFcmDwPwCpu);
    d["jax_fcm_dw_pw_int8"] = handler_capsule(JaxFcmDwPwInt8Cpu);
    d["jax_fcm_dw_backward"] = handler_capsule(JaxFcmDwBackwardCpu);
    d["jax_fcm_mbconv"] = handler_capsule(JaxFcmMbconvCpu);
    d["jax_fcm_pw_dw"] = handler_capsule(JaxFcmPwDwCpu);
    d["jax_fcm_depthwise"] = handler_capsule(JaxFcmDepthwiseCpu);
    d["jax_fcm_pointwise"] = handler_capsule(JaxFcmPointwiseCpu);
    d["jax_fcm_pw_pw"] = handler_capsule(JaxFcmPwPwCpu);
    d["jax_fcm_pw_pw_int8"] = handler_capsule(JaxFcmPwPwInt8Cpu);
    d["jax_fcm_convnext_mlp"] = handler_capsule(JaxFcmConvNextMlpCpu);
    d["jax_fcm_conv2d"] = handler_capsule(JaxFcmConv2dCpu);
    return d;
  });
  m.def("cuda_targets", []() {
    nb::dict d;
#ifdef JAX_FCM_WITH_CUDA
    d["jax_fcm_dw_pw"] = handler_capsule(JaxFcmDwPwCuda);
    d["jax_fcm_dw_pw_int8"] = handler_capsule(JaxFcmDwPwInt8Cuda);
    d["jax_fcm_dw_backward"] = handler_capsule(JaxFcmDwBackwardCuda);
    d["jax_fcm_mbconv"] = handler_capsule(JaxFcmMbconvCuda);
    d["jax_fcm_pw_dw"] = handler_capsule(JaxFcmPwDwCuda);
    d["jax_fcm_depthwise"] = handler_capsule(JaxFcmDepthwiseCuda);
    d["jax_fcm_pointwise"] = handler_capsule(JaxFcmPointwiseCuda);
    d["jax_fcm_pw_pw"] = handler_capsule(JaxFcmPwPwCuda);
    d["jax_fcm_pw_pw_int8"] = handler_capsule(JaxFcmPwPwInt8Cuda);
    d["jax_fcm_convnext_mlp"] = handler_capsule(JaxFcmConvNextMlpCuda);
    d["jax_fcm_conv2d"] = handler_capsule(JaxFcmConv2dCuda);
#endif
    return d;
  });
  m.def(
      "cuda_device_attributes",
      [](int ordinal) -> nb::object {
#ifdef JAX_FCM_WITH_CUDA
        jax_fcm::DeviceAttributes a;
        if (jax_fcm::query_device_attributes(ordinal, &a) != cudaSuccess) return nb::none();
        nb::dict d;
        d["sm_count"] = a.sm_count;
        d["smem_per_block"] = a.smem_per_block_optin;
        d["smem_per_sm"] = a.smem_per_sm;
        d["registers_per_sm"] = a.registers_per_sm;
        d["l2_bytes"] = a.l2_bytes;
        d["compute_capability"] = nb::make_tuple(a.major, a.minor);
        d["bus_width_bits"] = a.bus_width_bits;
        return d;
#else
        (void)ordinal;
        return nb::none();
#endif
      },
      nb::arg("ordinal"), "CUDA attributes of one device (a dict), or None without CUDA or such a device.");
  m.def(
      "pointwise_plan",
      [](int element_type, int64_t m, int64_t cin, int64_t cout, int sm_count, bool clusters, bool wgmma) {
        jax_fcm::PointwiseShape s;
        s.m = m, s.cin = cin, s.cout = cout;
        const jax_fcm::PointwisePlan p =
            jax_fcm::plan_pointwise(static_cast<jax_fcm::ElementType>(element_type), s, sm_count, clusters, wgmma);
        nb::dict d;
        d["tile_m"] = p.tile_m;
        d["tile_n"] = p.tile_n;
        d["channel_chunk"] = p.channel_chunk;
        d["splits"] = p.splits;
        d["wgmma"] = p.wgmma;
        d["blocks_per_sm"] = p.blocks_per_sm;
        return d;
      },
      nb::arg("element_type"), nb::arg("m"), nb::arg("cin"), nb::arg("cout"), nb::arg("sm_count"),
      nb::arg("clusters"), nb::arg("wgmma") = false,
      "The CUDA pointwise kernel's launch layout (tile_m, tile_n, channel_chunk, splits, wgmma, blocks_per_sm) for M pixels x Cin -> "
      "Cout on a device with sm_count SMs (wgmma: the build has the Hopper warpgroup-MMA kernel and the device runs "
      "it); element_type: 0 float32, 1 bfloat16, 2 float16.");
  m.def(
      "depthwise_launch",
      [](int64_t n, int64_t ho, int64_t wo, int64_t c, int64_t kernel, int64_t stride, int sm_count) {
        jax_fcm::DepthwiseShape d;
        d.n = n, d.ho = ho, d.wo = wo, d.c = c, d.kernel = kernel, d.stride = stride;
        nb::dict out;
        const bool rows = jax_fcm::use_depthwise_rows(d, sm_count);
        const int chunk = jax_fcm::depthwise_rows_chunk(wo, c);
        out["kernel"] = rows ? "rows" : "general";
        out["tile"] = rows ? nb::make_tuple(7, jax_fcm::depthwise_rows_tile_w(chunk)) : nb::make_tuple(8, 8);
        return out;
      },
      nb::arg("n"), nb::arg("ho"), nb::arg("wo"), nb::arg("c"), nb::arg("kernel"), nb::arg("stride"),
      nb::arg("sm_count"),
      "Which CUDA depthwise kernel a layer with output N x Ho x Wo x C runs on a device with sm_count SMs: "
      "'rows' (the 7x7 large-batch kernel) or 'general', with its output tile (rows, columns).");
  m.def("pw_pw_tile_n", &jax_fcm::pw_pw_tile_n, nb::arg("cin"), nb::arg("cout"),
        "Output channels per block of the CUDA pw_pw kernel (32, 64, 96 or 128) for Cin -> ... -> Cout.");
  m.def(
      "convnext_block_tile",
      [](int64_t c) {
        const int tile_n = jax_fcm::pw_pw_wgmma_tile_n(c, c, /*block=*/true);
        return nb::make_tuple(jax_fcm::pw_pw_wgmma_tile_m(tile_n), tile_n);
      },
      nb::arg("c"), "(pixel rows, output channels) per block of jax_fcm.convnext_block's fused CUDA kernel for C channels.");
  m.def(
      "pw_pw_max_cin",
      [](int element_type) { return jax_fcm::pw_pw_max_cin(static_cast<jax_fcm::ElementType>(element_type)); },
      nb::arg("element_type"), "The widest input (Cin) the pw_pw kernels take; element_type as for pointwise_plan.");
#ifdef JAX_FCM_WITH_CUDA
  m.attr("built_with_cuda") = true;
#else
  m.attr("built_with_cuda") = false;
#endif
  // The Hopper warpgroup-MMA kernels (an sm_90a build): jax_fcm_convnext_mlp runs only on them.
#ifdef JAX_FCM_WGMMA
  m.attr("built_with_wgmma") = true;
#else
  m.attr("built_with_wgmma") = false;
#endif
}
