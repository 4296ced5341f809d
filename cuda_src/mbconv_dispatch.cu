// Runtime -> compile-time dispatch for the fused MBConv kernels (instantiated
// in generated files, see CMakeLists.txt).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "mbconv_launch.h"
#include "mbconv_traits.cuh"

namespace jax_fcm {
namespace {

// Calls f.template operator()<T, Math, K, S, TN>() for the runtime choice;
// false when it was not compiled.
template <typename T, int Math, int K, int S, class F>
bool by_tile_n(int tile_n, F&& f) {
  switch (tile_n) {
    case 32: f.template operator()<T, Math, K, S, 32>(); return true;
    case 64: f.template operator()<T, Math, K, S, 64>(); return true;
    case 96: f.template operator()<T, Math, K, S, 96>(); return true;
    case 128: f.template operator()<T, Math, K, S, 128>(); return true;
    case 160: f.template operator()<T, Math, K, S, 160>(); return true;
  }
  return false;
}

template <typename T, int Math, int K, class F>
bool by_stride(int stride, int tile_n, F&& f) {
  switch (stride) {
    case 1: return by_tile_n<T, Math, K, 1>(tile_n, f);
    case 2: return by_tile_n<T, Math, K, 2>(tile_n, f);
  }
  return false;
}

template <typename T, int Math, class F>
bool by_kernel(int kernel, int stride, int tile_n, F&& f) {
  switch (kernel) {
    case 3: return by_stride<T, Math, 3>(stride, tile_n, f);
    case 5: return by_stride<T, Math, 5>(stride, tile_n, f);
    case 7: return by_stride<T, Math, 7>(stride, tile_n, f);
  }
  return false;
}

template <class F>
bool by_type(ElementType type, PwMath math, int kernel, int stride, int tile_n, F&& f) {
  switch (type) {
    case ElementType::kF32:
      return math == kPwMathFp32 ? by_kernel<float, kPwMathFp32>(kernel, stride, tile_n, f)
                                 : by_kernel<float, kPwMathTf32>(kernel, stride, tile_n, f);
    case ElementType::kBF16: return by_kernel<__nv_bfloat16, kPwMathTf32>(kernel, stride, tile_n, f);
    case ElementType::kF16: return by_kernel<__half, kPwMathTf32>(kernel, stride, tile_n, f);
  }
  return false;
}

// The two things done with a chosen instantiation.
struct SmemBytes {
  int cin, splits;
  int* bytes;
  template <typename T, int Math, int K, int S, int TN>
  void operator()() const {
    *bytes = mbconv_detail::make_smem_plan<mbconv_detail::Traits<T, Math, K, S, TN>>(cin, splits).bytes;
  }
};

struct Launch {
  const MbconvShape& shape;
  const MbconvEpilogue& epilogue;
  const MbconvPointers& ptrs;
  int splits;
  cudaStream_t stream;
  cudaError_t* status;
  template <typename T, int Math, int K, int S, int TN>
  void operator()() const {
    *status = launch_mbconv<T, Math, K, S, TN>(shape, epilogue, ptrs, splits, stream);
  }
};

struct PwDwSmemBytes {
  int cin;
  int* bytes;
  template <typename T, int Math, int K, int S, int TN>
  void operator()() const {
    *bytes = mbconv_detail::make_smem_plan<mbconv_detail::Traits<T, Math, K, S, kPwDwTileN>>(cin, 1, false).bytes;
  }
};

struct LaunchPwDw {
  const MbconvShape& shape;
  const MbconvEpilogue& epilogue;
  const MbconvPointers& ptrs;
  cudaStream_t stream;
  cudaError_t* status;
  template <typename T, int Math, int K, int S, int TN>  // TN: kPwDwTileN, as passed below
  void operator()() const {
    *status = launch_pw_dw<T, Math, K, S>(shape, epilogue, ptrs, stream);
  }
};

}  // namespace

int mbconv_smem_bytes(ElementType type, int kernel, int stride, int tile_n, int splits, int64_t cin) {
  int bytes = -1;
  if (cin < 1 || cin > (1 << 20)) return bytes;
  by_type(type, kPwMathTf32, kernel, stride, tile_n, SmemBytes{int(cin), splits, &bytes});
  return bytes;
}

bool mbconv_config_supported(const MbconvShape& shape, int tile_n, int splits) {
  const int64_t k = shape.inner.kernel, s = shape.inner.stride;
  bool tile_ok = false;
  for (int tn : kMbconvTileNs) tile_ok = tile_ok || tn == tile_n;
  return (k == 3 || k == 5 || k == 7) && (s == 1 || s == 2) && tile_ok &&
         (splits == 1 || splits == 2 || splits == 4 || splits == 8);
}

cudaError_t dispatch_mbconv(ElementType type, PwMath math, const MbconvShape& shape, int tile_n, int splits,
                            const MbconvEpilogue& epilogue, const MbconvPointers& ptrs, cudaStream_t stream) {
  if (!mbconv_config_supported(shape, tile_n, splits) || !mbconv_offsets_fit_int32(shape)) return cudaErrorInvalidValue;
  cudaError_t status = cudaErrorInvalidValue;
  by_type(type, math, int(shape.inner.kernel), int(shape.inner.stride), tile_n,
          Launch{shape, epilogue, ptrs, splits, stream, &status});
  return status;
}

int pw_dw_smem_bytes(ElementType type, int kernel, int stride, int64_t cin) {
  int bytes = -1;
  if (cin < 1 || cin > (1 << 20)) return bytes;
  by_type(type, kPwMathTf32, kernel, stride, kPwDwTileN, PwDwSmemBytes{int(cin), &bytes});
  return bytes;
}

cudaError_t dispatch_pw_dw(ElementType type, PwMath math, const MbconvShape& shape, const MbconvEpilogue& epilogue,
                           const MbconvPointers& ptrs, cudaStream_t stream) {
  const int64_t k = shape.inner.kernel, s = shape.inner.stride;
  if (!(k == 3 || k == 5 || k == 7) || !(s == 1 || s == 2) || !mbconv_offsets_fit_int32(shape))
    return cudaErrorInvalidValue;
  cudaError_t status = cudaErrorInvalidValue;
  by_type(type, math, int(k), int(s), kPwDwTileN, LaunchPwDw{shape, epilogue, ptrs, stream, &status});
  return status;
}

}  // namespace jax_fcm
