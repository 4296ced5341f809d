// The int8 depthwise stage (depthwise_chunk_int8: byte transposes, funnel shifts, DP4A sums that start
// from the bias, requantization) run for every thread of a block on the host, against direct int32 math
// and requantize() (cuda_src/requantize.h), bit for bit: kernels 3, 5, 7, strides 1, 2, the three work
// units (8x8 and 4x8 tiles, 32- and 64-channel chunks), the last channel group partial, and biases up to
// 2^29 (where fp32(sum + bias) rounds). Prints one line per case, then ALL OK or FAILED (exit 1).
#include <cstdio>
#include <random>
#include <vector>

#include "dw_pw_depthwise_int8.cuh"
#include "dw_pw_traits.cuh"

using namespace jax_fcm;
using namespace jax_fcm::dw_pw_detail;

template <int K, int S, int TH, int KC>
int check(std::mt19937& gen, bool wide_bias) {
  using Tr = Traits<int8_t, kPwMathTf32, K, S, 64, TH, KC>;
  std::uniform_int_distribution<int> byte(-128, 127);
  std::vector<int8_t> in(Tr::kInH * Tr::kInW * Tr::kInPix), taps(K * K * KC), a(Tr::kTileP * Tr::kLdA, 99);
  for (auto& v : in) v = int8_t(byte(gen));
  for (auto& v : taps) v = int8_t(byte(gen));
  const int c0 = 2 * KC, channels = c0 + KC - 5;  // the third chunk, its last group partial
  std::vector<int32_t> bias(c0 + KC);
  std::vector<float> multiplier(c0 + KC);
  std::uniform_real_distribution<double> u(0, 1);
  const double spread = wide_bias ? double(1 << 28) : K * 73.0 * 73.0;
  for (int i = 0; i < c0 + KC; ++i)
    bias[i] = int32_t((u(gen) * 4 - 2) * spread), multiplier[i] = float((20 + 60 * u(gen)) / spread);
  DwPwShape shape;
  shape.c = channels;
  const Requant rq{bias.data(), multiplier.data(), -100, 90};
  for (int t = 0; t < Tr::kThreads; ++t) {
    threadIdx.x = t;
    depthwise_chunk_int8<Tr>(in.data(), taps.data(), a.data(), shape, c0, rq);
  }
  int mismatches = 0;
  for (int p = 0; p < Tr::kTileP; ++p)
    for (int c = 0; c < KC; ++c) {
      const int oy = p / Tr::TW, ox = p % Tr::TW;
      int want = 0;  // channels past C
      if (c0 + c < channels) {
        int32_t acc = bias[c0 + c];
        for (int ky = 0; ky < K; ++ky)
          for (int kx = 0; kx < K; ++kx)
            acc += int(in[((oy * S + ky) * Tr::kInW + ox * S + kx) * Tr::kInPix + c]) * int(taps[(ky * K + kx) * KC + c]);
        want = int(requantize(acc, multiplier[c0 + c], rq.qmin, rq.qmax));
      }
      mismatches += a[p * Tr::kLdA + c] != want;
    }
  printf("k%d s%d tile %dx8 chunk %d (run %d)%s: %d mismatches\n", K, S, TH, KC, Tr::kRun,
         wide_bias ? ", wide biases" : "", mismatches);
  return mismatches;
}

template <int K, int S>
int check_units(std::mt19937& gen) {
  int mismatches = 0;
  for (bool wide : {false, true})
    mismatches += check<K, S, 8, 32>(gen, wide) + check<K, S, 4, 32>(gen, wide) + check<K, S, 8, 64>(gen, wide);
  return mismatches;
}

int main() {
  std::mt19937 gen(3);
  const int mismatches = check_units<3, 1>(gen) + check_units<3, 2>(gen) + check_units<5, 1>(gen) +
                         check_units<5, 2>(gen) + check_units<7, 1>(gen) + check_units<7, 2>(gen);
  printf("%s\n", mismatches ? "FAILED" : "ALL OK");
  return mismatches != 0;
}
