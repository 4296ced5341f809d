// The launch every fused DW -> PW CUDA handler ends with (float and int8):
// checks that a kernel was compiled for the call's tile and that its offsets
// fit the kernels' 32-bit index math, then launches on XLA's stream.
#pragma once

#include <cuda_runtime.h>

#include "dw_pw_ffi.h"

namespace jax_fcm {

ffi::Error launch_dw_pw_call(const DwPwCall& call, cudaStream_t stream);

}  // namespace jax_fcm
