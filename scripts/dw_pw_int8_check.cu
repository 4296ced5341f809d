// Standalone check of the int8 fused DW -> PW CUDA kernel (cuda_src/dw_pw_kernel.cuh, jax_fcm.dw_pw_int8)
// against the host integer math (ffi/dw_pw_int8_cpu_core.h), bit for bit: every depthwise work unit (kernel
// 3, 5, 7; stride 1, 2; 8x8 and 4x8 pixel tiles; 32- and 64-channel chunks), odd shapes, channel splits,
// biases far past a window's sum. No Python, JAX or extension build needed: built on a machine without a
// GPU (the CUDA runtime links statically) it runs on the device in seconds, where building the extension
// there takes minutes. With --time it then times MobileNet-sized layers at N = 64 (CUDA events around 50
// launches, per tile configuration), to compare two builds of the kernel in one device call.
//   nvcc -O3 -std=c++17 -arch=sm_90a -Icuda_src -Iffi scripts/dw_pw_int8_check.cu -o dw_pw_int8_check
//   ./dw_pw_int8_check [--time]   # one line per case, then ALL OK (exit 0) or FAILED (exit 1)
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "dw_pw_int8_cpu_core.h"
#include "dw_pw_kernel.cuh"

namespace jax_fcm {
// What dw_pw_dispatch.cu provides the launcher in the extension (here uncached).
cudaError_t device_limits(DeviceLimits* limits) {
  int device = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&limits->max_dynamic_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  cudaDeviceGetAttribute(&limits->major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&limits->sm_count, cudaDevAttrMultiProcessorCount, device);
  limits->clusters = limits->major >= 9;
  return cudaGetLastError();
}
}  // namespace jax_fcm

using namespace jax_fcm;

// The three depthwise work units (kRun = 1, 2, 4 outputs per thread) at one output tile (64).
enum Unit { kTile8x8, kTile4x8, kTile8x8Wide };
const char* kUnitNames[] = {"8x8/kc32", "4x8/kc32", "8x8/kc64"};

template <int K, int S>
cudaError_t launch_unit(Unit unit, const DwPwShape& s, const DwPwEpilogue& e, const DwPwPointers& p,
                        const DwPwTileConfig& t) {
  switch (unit) {
    case kTile4x8: return launch_dw_pw<int8_t, kPwMathTf32, K, S, 64, 4, 32>(s, e, p, t, 0);
    case kTile8x8Wide: return launch_dw_pw<int8_t, kPwMathTf32, K, S, 64, 8, 64>(s, e, p, t, 0);
    default: return launch_dw_pw<int8_t, kPwMathTf32, K, S, 64, 8, 32>(s, e, p, t, 0);
  }
}

cudaError_t launch(Unit unit, const DwPwShape& s, const DwPwEpilogue& e, const DwPwPointers& p, int splits) {
  DwPwTileConfig t;
  t.tile_h = unit == kTile4x8 ? 4 : 8;
  t.channel_chunk = unit == kTile8x8Wide ? 64 : 32;
  t.channel_splits = splits;
  switch (s.kernel * 10 + s.stride) {
    case 31: return launch_unit<3, 1>(unit, s, e, p, t);
    case 32: return launch_unit<3, 2>(unit, s, e, p, t);
    case 51: return launch_unit<5, 1>(unit, s, e, p, t);
    case 52: return launch_unit<5, 2>(unit, s, e, p, t);
    case 71: return launch_unit<7, 1>(unit, s, e, p, t);
    default: return launch_unit<7, 2>(unit, s, e, p, t);
  }
}

struct Case {
  int n, h, w, c, cout, k, stride;
  int dw_qmin, dw_qmax, pw_qmin, pw_qmax;
  bool wide_bias;  // biases up to 2^30: fp32(sum + bias) rounds
};

// One layer's operands on the host and the device (SAME padding).
struct Layer {
  DwPwShape s;
  DwPwEpilogue e;
  std::vector<int8_t> x, dw, pw;
  std::vector<int32_t> dw_bias, pw_bias;
  std::vector<float> dw_mult, pw_mult;
  DwPwPointers d{};

  Layer(const Case& c, std::mt19937& gen) {
    s.n = c.n, s.h = c.h, s.w = c.w, s.c = c.c, s.cout = c.cout, s.kernel = c.k, s.stride = c.stride;
    s.ho = (c.h + c.stride - 1) / c.stride, s.wo = (c.w + c.stride - 1) / c.stride;
    s.pad_top = std::max<int64_t>((s.ho - 1) * c.stride + c.k - c.h, 0) / 2;
    s.pad_left = std::max<int64_t>((s.wo - 1) * c.stride + c.k - c.w, 0) / 2;
    e.dw_qmin = c.dw_qmin, e.dw_qmax = c.dw_qmax, e.pw_qmin = c.pw_qmin, e.pw_qmax = c.pw_qmax;
    std::uniform_int_distribution<int> byte(-128, 127), wbyte(-127, 127);
    x.resize(size_t(s.n) * s.h * s.w * s.c), dw.resize(c.k * c.k * c.c), pw.resize(size_t(c.cout) * c.c);
    for (auto& v : x) v = int8_t(byte(gen));
    for (auto& v : dw) v = int8_t(wbyte(gen));
    for (auto& v : pw) v = int8_t(wbyte(gen));
    // Biases and multipliers that spread the requantized values over the int8 range (as
    // tests/test_dw_pw_int8.py); wide biases move the sums far past 2^24, where fp32 rounds them.
    const double dw_sum = c.wide_bias ? 1 << 28 : c.k * 73.0 * 73, pw_sum = std::sqrt(double(c.c)) * 60 * 73;
    std::uniform_real_distribution<double> u(0, 1);
    dw_bias.resize(c.c), pw_bias.resize(c.cout), dw_mult.resize(c.c), pw_mult.resize(c.cout);
    for (int i = 0; i < c.c; ++i)
      dw_bias[i] = int32_t((u(gen) * 4 - 2) * dw_sum), dw_mult[i] = float((20 + 60 * u(gen)) / dw_sum);
    for (int i = 0; i < c.cout; ++i)
      pw_bias[i] = int32_t((u(gen) * 4 - 2) * pw_sum), pw_mult[i] = float((40 + 120 * u(gen)) / pw_sum);
    d.x = upload(x), d.dw_kernel = upload(dw), d.pw_kernel = upload(pw), d.dw_bias = upload(dw_bias);
    d.pw_bias = upload(pw_bias);
    d.dw_multiplier = static_cast<const float*>(upload(dw_mult));
    d.pw_multiplier = static_cast<const float*>(upload(pw_mult));
    cudaMalloc(&d.y, size_t(s.n) * s.ho * s.wo * s.cout);
  }
  ~Layer() {
    for (const void* p : {d.x, d.dw_kernel, d.pw_kernel, d.dw_bias, d.pw_bias, (const void*)d.y,
                          (const void*)d.dw_multiplier, (const void*)d.pw_multiplier})
      cudaFree(const_cast<void*>(p));
  }
  template <typename V>
  static const void* upload(const std::vector<V>& h) {
    void* p = nullptr;
    cudaMalloc(&p, h.size() * sizeof(V));
    cudaMemcpy(p, h.data(), h.size() * sizeof(V), cudaMemcpyHostToDevice);
    return p;
  }
  std::vector<int8_t> reference() const {
    std::vector<int8_t> y(size_t(s.n) * s.ho * s.wo * s.cout);
    DwPwPointers h{x.data(), dw.data(), dw_bias.data(), pw.data(), pw_bias.data(), y.data(), dw_mult.data(),
                   pw_mult.data()};
    dw_pw_int8_host(s, e, h);
    return y;
  }
};

int check_all() {
  std::mt19937 gen(1);
  int failures = 0;
  for (int k : {3, 5, 7})
    for (int stride : {1, 2})
      for (Unit unit : {kTile8x8, kTile4x8, kTile8x8Wide}) {
        // Odd sizes and channels off every vector and chunk; one image of aligned channels with ReLU6-like
        // clamps and 4-way channel splits; biases past 2^24.
        const Case cases[] = {{3, 13, 11, 37, 29, k, stride, -128, 127, -128, 127, false},
                              {1, 9, 17, 136, 64, k, stride, 0, 50, 0, 127, false},
                              {2, 10, 10, 75, 40, k, stride, -128, 127, 0, 50, true}};
        for (int i = 0; i < 3; ++i) {
          const Case& c = cases[i];
          Layer layer(c, gen);
          const int splits = i == 1 ? 4 : 1;
          cudaError_t err = launch(unit, layer.s, layer.e, layer.d, splits);
          if (err == cudaSuccess) err = cudaDeviceSynchronize();
          std::vector<int8_t> y(size_t(layer.s.n) * layer.s.ho * layer.s.wo * layer.s.cout);
          cudaMemcpy(y.data(), layer.d.y, y.size(), cudaMemcpyDeviceToHost);
          const std::vector<int8_t> ref = layer.reference();
          long bad = 0, first = -1;
          for (size_t j = 0; j < y.size(); ++j)
            if (y[j] != ref[j]) first = first < 0 ? long(j) : first, ++bad;
          printf("k%d s%d %s n%d %dx%d c%d->%d splits %d%s: %s, %ld/%zu mismatches (first %ld: got %d want %d)\n",
                 k, stride, kUnitNames[unit], c.n, c.h, c.w, c.c, c.cout, splits, c.wide_bias ? " wide bias" : "",
                 cudaGetErrorString(err), bad, y.size(), first, first >= 0 ? y[first] : 0,
                 first >= 0 ? ref[first] : 0);
          failures += bad > 0 || err != cudaSuccess;
        }
      }
  return failures;
}

// Microseconds per launch of each work unit on MobileNet-sized layers (bench.SUITE's int8 layers, and a
// 5x5 and a 7x7 one), N = 64.
void time_layers() {
  const Case layers[] = {{64, 112, 112, 32, 64, 3, 1, 0, 127, 0, 127, false},
                         {64, 56, 56, 144, 24, 3, 1, 0, 50, -128, 127, false},
                         {64, 28, 28, 192, 32, 3, 1, 0, 50, -128, 127, false},
                         {64, 14, 14, 384, 64, 3, 1, 0, 50, -128, 127, false},
                         {64, 14, 14, 576, 96, 3, 1, 0, 50, -128, 127, false},
                         {64, 7, 7, 960, 160, 3, 1, 0, 50, -128, 127, false},
                         {64, 56, 56, 144, 32, 3, 2, 0, 50, -128, 127, false},
                         {64, 28, 28, 240, 40, 5, 1, 0, 50, -128, 127, false},
                         {64, 56, 56, 96, 96, 7, 1, -128, 127, -128, 127, false}};
  std::mt19937 gen(2);
  cudaEvent_t start, stop;
  cudaEventCreate(&start), cudaEventCreate(&stop);
  for (const Case& c : layers) {
    Layer layer(c, gen);
    printf("time n%d %dx%d c%d->%d k%d s%d:", c.n, c.h, c.w, c.c, c.cout, c.k, c.stride);
    for (Unit unit : {kTile8x8, kTile4x8, kTile8x8Wide}) {
      constexpr int kLaunches = 50;
      for (int i = 0; i < 5; ++i) launch(unit, layer.s, layer.e, layer.d, 1);
      cudaEventRecord(start);
      for (int i = 0; i < kLaunches; ++i) launch(unit, layer.s, layer.e, layer.d, 1);
      cudaEventRecord(stop);
      cudaEventSynchronize(stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      printf("  %s %.1f us", kUnitNames[unit], 1000 * ms / kLaunches);
    }
    printf("  (%s)\n", cudaGetErrorString(cudaGetLastError()));
  }
}

int main(int argc, char** argv) {
  const int failures = check_all();
  if (argc > 1 && std::strcmp(argv[1], "--time") == 0) time_layers();
  printf("%s\n", failures ? "FAILED" : "ALL OK");
  return failures != 0;
}
