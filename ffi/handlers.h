// FFI handler symbols exported to Python as capsules by module.cc.
#pragma once

#include "xla/ffi/api/c_api.h"

extern "C" XLA_FFI_Error* JaxFcmDwPwCpu(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmDwPwInt8Cpu(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmDwBackwardCpu(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmMbconvCpu(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmPwDwCpu(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmDepthwiseCpu(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmPointwiseCpu(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmPwPwCpu(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmPwPwInt8Cpu(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmConvNextMlpCpu(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmConv2dCpu(XLA_FFI_CallFrame* call_frame);
#ifdef JAX_FCM_WITH_CUDA
extern "C" XLA_FFI_Error* JaxFcmDwPwCuda(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmDwPwInt8Cuda(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmDwBackwardCuda(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmMbconvCuda(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmPwDwCuda(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmDepthwiseCuda(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmPointwiseCuda(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmPwPwCuda(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmPwPwInt8Cuda(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmConvNextMlpCuda(XLA_FFI_CallFrame* call_frame);
extern "C" XLA_FFI_Error* JaxFcmConv2dCuda(XLA_FFI_CallFrame* call_frame);
#endif
