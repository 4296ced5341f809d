// A thread's depthwise work unit in one staged channel chunk, shared by the
// fp32 and the int8 (DP4A) depthwise stages so that both read the staged
// input and fill the A tile the same way.
#pragma once

#include "element.cuh"

namespace jax_fcm {
namespace dw_pw_detail {

// 4 channels (group g: chunk channels 4g .. 4g + 3) x kRun neighbouring
// output pixels (segment seg) of output row oy; consecutive threads take
// consecutive channel groups. kRun is chosen so that one chunk is exactly
// one unit per thread (Traits).
template <class Tr>
struct DepthwiseUnit {
  using T = typename Tr::T;
  static constexpr int kGroups = Tr::KC / 4, kSegs = Tr::TW / Tr::kRun;
  int g, seg, oy;

  __device__ __forceinline__ DepthwiseUnit()
      : g(int(threadIdx.x) % kGroups),
        seg(int(threadIdx.x) / kGroups % kSegs),
        oy(int(threadIdx.x) / (kGroups * kSegs)) {}

  // The unit's channels at the first staged pixel of its windows' filter row ky.
  __device__ __forceinline__ const T* input_row(const T* in_s, int ky) const {
    return in_s + ((oy * Tr::S + ky) * Tr::kInW + seg * Tr::kRun * Tr::S) * Tr::kInPix + 4 * g;
  }

  // The unit's values (kRun pixels x 4 channels) into the A tile.
  __device__ __forceinline__ void store(T* a_s, const float (&out)[Tr::kRun][4]) const {
    T* dst = a_s + (oy * Tr::TW + seg * Tr::kRun) * Tr::kLdA + 4 * g;
#pragma unroll
    for (int r = 0; r < Tr::kRun; ++r) Elem<T>::store4(dst + r * Tr::kLdA, out[r]);
  }
};

}  // namespace dw_pw_detail
}  // namespace jax_fcm
