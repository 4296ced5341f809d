// Standalone check of the int8 PW -> PW CUDA kernel (cuda_src/pw_pw_kernel.cuh) against the same
// integer math on the host (requantize.h), bit for bit, over odd shapes and every output tile; no Python,
// JAX or extension build needed. Built on a machine without a GPU (the CUDA runtime links statically) it
// runs on the device in seconds, where building the extension there takes minutes:
//   nvcc -O3 -std=c++17 -arch=sm_90a -Icuda_src scripts/pw_pw_int8_check.cu -o pw_pw_int8_check
//   ./pw_pw_int8_check   # prints one line per shape, then ALL OK (exit 0) or FAILED (exit 1)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
#include "pw_pw_kernel.cuh"
#include "requantize.h"
using namespace jax_fcm;

static cudaError_t launch(const PwPwShape& s, const PwPwPointers& p) {
  switch (pw_pw_tile_n(s.cin, s.cout)) {
    case 32: return launch_pw_pw<int8_t, 32>(s, p, 0, 0, 0);
    case 64: return launch_pw_pw<int8_t, 64>(s, p, 0, 0, 0);
    case 96: return launch_pw_pw<int8_t, 96>(s, p, 0, 0, 0);
    default: return launch_pw_pw<int8_t, 128>(s, p, 0, 0, 0);
  }
}

int main() {
  // Pixels, channels and clamp ranges: channel counts off the 16-byte vectors, partial intermediate steps
  // and output tiles, the widest input, several 128-row blocks; tiles 32, 64, 96, 128 (pw_pw_tile_n).
  struct Case { long m; int cin, hidden, cout, q1min, q1max, q2min, q2max; };
  Case cases[] = {{1, 1, 1, 1, -128, 127, -128, 127}, {153, 3, 18, 5, 0, 50, -128, 127},
                  {39, 16, 64, 32, 0, 127, 0, 127}, {91, 37, 70, 64, -128, 127, 0, 50},
                  {192, 24, 144, 96, 0, 50, -128, 127}, {90, 144, 24, 144, -128, 127, 0, 127},
                  {380, 48, 192, 128, 0, 50, -128, 127}, {30, 96, 384, 96, 0, 127, -128, 127},
                  {16, 384, 40, 520, 0, 50, 0, 50}, {4000, 64, 256, 64, -128, 127, -128, 127},
                  {777, 40, 200, 128, 0, 127, 0, 127}, {777, 40, 200, 96, 0, 127, 0, 127},
                  {777, 40, 200, 32, 0, 127, 0, 127}};
  std::mt19937 gen(1);
  int failures = 0;
  for (const Case& c : cases) {
    std::uniform_int_distribution<int> byte(-128, 127), wbyte(-127, 127);
    std::vector<int8_t> x(c.m * c.cin), w1(c.hidden * c.cin), w2(c.cout * c.hidden), y(c.m * c.cout), ref(c.m * c.cout);
    for (auto& v : x) v = int8_t(byte(gen));
    for (auto& v : w1) v = int8_t(wbyte(gen));
    for (auto& v : w2) v = int8_t(wbyte(gen));
    // Biases and multipliers that spread the requantized values over the int8 range (as tests/test_pw_pw_int8.py).
    const double sum1 = std::sqrt(double(c.cin)) * 73 * 73, sum2 = std::sqrt(double(c.hidden)) * 60 * 73;
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<int32_t> b1(c.hidden), b2(c.cout);
    std::vector<float> m1(c.hidden), m2(c.cout);
    for (int i = 0; i < c.hidden; ++i)
      b1[i] = int32_t((u(gen) * 4 - 2) * sum1), m1[i] = float((20 + 60 * u(gen)) / sum1);
    for (int i = 0; i < c.cout; ++i)
      b2[i] = int32_t((u(gen) * 4 - 2) * sum2), m2[i] = float((40 + 120 * u(gen)) / sum2);
    std::vector<int8_t> mid(c.hidden);
    for (long m = 0; m < c.m; ++m) {
      requantized_pixel(&x[m * c.cin], c.cin, w1.data(), b1.data(), m1.data(), c.hidden, c.q1min, c.q1max,
                        mid.data());
      requantized_pixel(mid.data(), c.hidden, w2.data(), b2.data(), m2.data(), c.cout, c.q2min, c.q2max,
                        &ref[m * c.cout]);
    }
    auto up = [](const void* h, size_t n) {
      void* d;
      cudaMalloc(&d, n);
      cudaMemcpy(d, h, n, cudaMemcpyHostToDevice);
      return d;
    };
    PwPwShape s; s.m = c.m; s.cin = c.cin; s.hidden = c.hidden; s.cout = c.cout;
    PwPwPointers p{up(x.data(), x.size()), up(w1.data(), w1.size()), up(b1.data(), 4 * b1.size()),
                   up(w2.data(), w2.size()), up(b2.data(), 4 * b2.size()), nullptr};
    cudaMalloc(&p.y, y.size());
    p.quant = PwPwQuant{(const float*)up(m1.data(), 4 * m1.size()), (const float*)up(m2.data(), 4 * m2.size()),
                        c.q1min, c.q1max, c.q2min, c.q2max};
    cudaError_t err = launch(s, p);
    if (err == cudaSuccess) err = cudaDeviceSynchronize();
    cudaMemcpy(y.data(), p.y, y.size(), cudaMemcpyDeviceToHost);
    long bad = 0, first = -1;
    for (size_t i = 0; i < y.size(); ++i) if (y[i] != ref[i]) { if (first < 0) first = long(i); ++bad; }
    printf("m=%ld cin=%d hidden=%d cout=%d tile=%d: %s, %ld/%zu mismatches (first %ld: got %d want %d)\n", c.m,
           c.cin, c.hidden, c.cout, pw_pw_tile_n(c.cin, c.cout), cudaGetErrorString(err), bad, y.size(), first,
           first >= 0 ? y[first] : 0, first >= 0 ? ref[first] : 0);
    for (const void* d : {p.x, p.w1, p.b1, p.w2, p.b2, (const void*)p.y, (const void*)p.quant.m1,
                          (const void*)p.quant.m2})
      cudaFree(const_cast<void*>(d));
    failures += bad > 0 || err != cudaSuccess;
  }
  printf("%s\n", failures ? "FAILED" : "ALL OK");
  return failures != 0;
}
