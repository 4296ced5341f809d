// Plain description of one fused inverted-residual (MBConv) call: 1x1 expand
// -> bias -> activation -> k x k depthwise -> bias -> activation -> 1x1
// project -> bias (linear) -> + x. Shared by the FFI handlers (C++) and the
// CUDA launcher; holds no CUDA or FFI types.
#pragma once

#include <cstdint>

#include "dw_pw_params.h"

namespace jax_fcm {

struct MbconvShape {
  int64_t cin = 0;  // x's channels (the expansion's input)
  // The depthwise -> project half, as the fused DW->PW op sees it: c is the
  // expanded width (Cmid), h/w/n are x's, cout the projection's width.
  DwPwShape inner;
};

// 32-bit index math as in dw_pw (dw_pw_offsets_fit_int32), plus x's own image
// and the expansion matrix.
inline bool mbconv_offsets_fit_int32(const MbconvShape& s) {
  constexpr int64_t kMax = 0x7fffffff;
  return dw_pw_offsets_fit_int32(s.inner) && s.inner.h * s.inner.w * s.cin <= kMax && s.cin * s.inner.c <= kMax;
}

struct MbconvEpilogue {
  int expand_activation = 0;  // after the expansion (mbconv: the block's activation; pw_dw: pw_activation)
  int dw_activation = 0;      // after the depthwise conv
  bool residual = false;      // y += x (stride 1, Cin == Cout, same spatial size)
};

// pw_dw (the expansion and the depthwise conv without the projection) is the
// same kernel's first two stages: inner.cout = Cmid (y is the depthwise
// result), project_kernel / project_bias null.
struct MbconvPointers {
  const void* x = nullptr;
  const void* expand_kernel = nullptr;   // (1, 1, Cin, Cmid) == [Cin][Cmid]
  const void* expand_bias = nullptr;     // (Cmid,)
  const void* dw_kernel = nullptr;       // (k, k, 1, Cmid) == [k*k][Cmid]
  const void* dw_bias = nullptr;         // (Cmid,)
  const void* project_kernel = nullptr;  // (1, 1, Cmid, Cout) == [Cmid][Cout]
  const void* project_bias = nullptr;    // (Cout,)
  void* y = nullptr;
};

}  // namespace jax_fcm
