// Compile-time geometry of one fused DW->PW instantiation, and the layout of
// its dynamic shared memory (which depends on two run-time choices: whether
// channel chunks are double-buffered, and whether the depthwise result of all
// channels stays resident so one block can sweep several output-channel tiles).
#pragma once

#include <cstdint>
#include <type_traits>

#include "dw_pw_params.h"

namespace jax_fcm {
namespace dw_pw_detail {

// Padding (16-bit elements, a multiple of 8: whole 16-byte copies) that puts
// two 32-channel pixels run * stride apart into opposite halves of the banks.
constexpr int input_pad_elements(int run, int stride) {
  for (int pad_words = 0; pad_words < 32; pad_words += 4)
    if (run * stride * (16 + pad_words) % 32 == 16) return 2 * pad_words;
  return 0;
}

// int8 (4-byte depthwise loads: a warp reads 32 / (KC / 4) runs of KC bytes,
// run * stride staged pixels apart): the padding, a multiple of 16 bytes
// (whole copies), that spreads those runs over the banks with the fewest
// runs sharing a bank.
constexpr int input_pad_int8(int run, int stride, int kc) {
  const int segs = 32 / (kc / 4), width = kc / 4;  // runs per warp, banks per run
  int best_pad = 0, best_worst = 99;
  for (int pad = 0; pad < 128; pad += 16) {
    int worst = 0;
    for (int bank = 0; bank < 32; ++bank) {
      int hits = 0;
      for (int seg = 0; seg < segs; ++seg) hits += (bank - seg * run * stride * (kc + pad) / 4 % 32 + 32) % 32 < width;
      worst = hits > worst ? hits : worst;
    }
    if (worst < best_worst) best_worst = worst, best_pad = pad;
  }
  return best_pad;
}

template <typename T_, int Math, int K_, int S_, int TN_, int TH_, int KC_ = 32>
struct Traits {
  using T = T_;
  // The depthwise result (the GEMM's A operand) is stored in T: what the
  // 16-bit tensor cores take, and fp32 for float32 (TF32 or FFMA). The CPU
  // handler rounds it the same way.
  static constexpr int K = K_, S = S_, TN = TN_, TH = TH_, TW = 8;
  static constexpr bool kTensorCores = !(std::is_same<T, float>::value && Math == kPwMathFp32);
  // float32 on TF32 tensor cores: the depthwise stage stores A already
  // rounded to TF32, so the GEMM loads it as is.
  static constexpr bool kTf32 = std::is_same<T, float>::value && kTensorCores;
  // int8 (quantized): int32 accumulators, requantized by per-channel fp32
  // multipliers read from global memory (no bias rows in shared memory), and
  // the pointwise rows staged transposed ([TN][KC]) for the int8 MMA.
  static constexpr bool kQuantized = std::is_same<T, int8_t>::value;
  static constexpr int kThreads = 256, kWarps = kThreads / 32;
  // Input channels per chunk (step): 32, or 64 for 16-bit types, which halves
  // the steps of deep layers (each with its barriers, copy waits and loop
  // overhead) and lets a depthwise unit reuse its taps over twice the pixels.
  static constexpr int KC = KC_;
  static constexpr int kTileP = TH * TW;                  // output pixels per block
  static constexpr int kWarpsM = kTileP / 16;             // warps along pixels
  static constexpr int kWarpsN = kWarps / kWarpsM;        // warps along channels
  static constexpr int kWarpN = TN / kWarpsN;             // channels per warp
  static constexpr int kFragsN = kWarpN / 16;             // 16x16 accumulators per warp
  static constexpr int kInH = (TH - 1) * S + K, kInW = (TW - 1) * S + K;
  static constexpr int kVec = 16 / sizeof(T);             // elements per 16-byte copy
  // Depthwise work unit: 4 channels x kRun neighbouring pixels of one row;
  // kRun is chosen so that one chunk is exactly one unit per thread.
  static constexpr int kRun = (KC / 4) * TH * TW / kThreads;
  static constexpr int kLdA = KC + kVec;                 // rows padded by 16 B: no bank conflicts
  // Elements per staged input pixel. The depthwise loads of 16-bit types are
  // 8 bytes, served per half-warp: 8 channel groups of two pixels kRun * S
  // apart. Dense (64-byte) pixels put both in the same 16 banks (a 2-way
  // conflict on every load); padding the pixel by kInPad moves the second
  // pixel to the other 16. float32 loads are 16 bytes, one pixel per phase;
  // a 64-channel pixel of a 16-bit type is a half-warp's whole 128 bytes.
  static constexpr int kInPad = kQuantized ? input_pad_int8(kRun, S, KC)
                                : sizeof(T) == 4 || KC != 32 ? 0 : input_pad_elements(kRun, S);
  static constexpr int kInPix = KC + kInPad;
  // Pointwise rows padded by 8 elements: 16-byte copies, and the TF32 MMA's
  // scalar B loads (lanes t * kLdB + g, t < 4, g < 8) hit 32 distinct banks.
  // int8: [TN][kLdB] rows of KC + 16 bytes (ldmatrix rows 48 bytes apart: 8
  // distinct 16-byte bank groups).
  static constexpr int kLdB = kQuantized ? KC + 16 : TN + 8;
  static constexpr int kScratchLd = 20;                   // epilogue scratch row (floats)
  static constexpr int kScratchBytes = kWarps * 16 * kScratchLd * 4;
  static constexpr int kInStageBytes = kInH * kInW * kInPix * int(sizeof(T));
  // Depthwise taps [K*K][KC] and, as one more row, the depthwise bias.
  static constexpr int kTapsStageBytes = (K * K + (kQuantized ? 0 : 1)) * KC * int(sizeof(T));
  // Pointwise rows [KC][kLdB] and, as one more row, the pointwise bias.
  static constexpr int kWStageBytes = (kQuantized ? TN : KC + 1) * kLdB * int(sizeof(T));
  static constexpr int kASlotBytes = kTileP * kLdA * int(sizeof(T));
  // fp32 partial sums of one block, rows padded by 4 floats: the epilogue's
  // lanes write 16 rows at once, and unpadded rows (TN a multiple of 32
  // floats) all start in the same bank (10-way conflicts, seen with ncu).
  static constexpr int kPartialLd = TN + 4;
  static constexpr int kPartialBytes = kTileP * kPartialLd * 4;
  static constexpr int kAccPerThread = kTileP * TN / kThreads;
  // Register budget (the cap is 64K / (256 x kMinBlocks)): small accumulator
  // tiles leave room for three resident blocks per SM; 7x7 taps need more
  // registers per depthwise unit. No more blocks than the shared memory of
  // the usual plan (3-stage ring, 2 A slots) lets an SM hold (228 KB on
  // Hopper): promising more only capped registers and made ptxas spill.
  static constexpr int kUsualSmemBytes = 3 * (kInStageBytes + kTapsStageBytes + kWStageBytes) + 2 * kASlotBytes;
  static constexpr int kBlocksBySmem = 228 * 1024 / (kUsualSmemBytes + 1024);
  static constexpr int kBlocksByRegs = K == 7 ? (kAccPerThread <= 16 ? 2 : 1) : (kAccPerThread <= 16 ? 3 : 2);
  static constexpr int kMinBlocks = kBlocksBySmem < 1 ? 1 : (kBlocksBySmem < kBlocksByRegs ? kBlocksBySmem : kBlocksByRegs);

  static_assert(kTileP % 16 == 0 && kWarps % kWarpsM == 0, "pixel tile must split into 16-row warp tiles");
  static_assert(TN % (16 * kWarpsN) == 0, "channel tile must split into 16-column fragments per warp");
  static_assert(kRun >= 1 && TW % kRun == 0 && (KC / 4) * TH * (TW / kRun) == kThreads,
                "one depthwise unit per thread and chunk");
  static_assert(KC % kVec == 0 && TN % kVec == 0, "16-byte copies must tile the chunk");
  static_assert(KC == 32 || (KC == 64 && sizeof(T) <= 2), "64-channel chunks are for 16-bit and int8 types");
};

// Run-time plan of one launch (computed by launch_dw_pw). A step is one
// (tile, pass, chunk) of a block; blocks walk `tiles / gridDim` pixel tiles
// when the grid is persistent, so the copy ring runs across tiles too.
struct DwPwRun {
  int tiles;        // pixel tiles of the whole output (N x tiles_h x tiles_w)
  int passes;       // output-channel tiles per block
  int nchunks;      // ceil(C / KC)
  int splits;       // blocks per cluster splitting the chunks (1: no cluster)
  int stages;       // input stage buffers in the copy ring (1..3, at most the number of steps)
  int taps_stages;  // 1 when a block only ever needs one chunk's taps (they stay resident)
  int w_stages;     // 1 when a block only ever needs one set of pointwise rows (resident)
  int a_slots;      // A tiles kept: nchunks when passes > 1, else a ring of <= 2
  bool own_scratch;          // blocks walk several tiles: the epilogue scratch cannot alias the input stages
  bool vec_x, vec_w, vec_y;  // 16-byte paths allowed (alignment and channel counts)
};

// Byte offsets of the shared-memory regions:
//   [input tile stages | scratch + partial sums] [depthwise taps stages] [pointwise weight stages] [A slots]
// The epilogue scratch (and, with channel splits, the fp32 partial-sum tile
// the cluster reduces) aliases the input stages when a block owns one tile:
// it is used only after the block's last depthwise step, when no input copy
// is in flight. Blocks that walk several tiles keep it apart.
struct SmemPlan {
  int off_scratch, off_taps, off_w, off_a, bytes;
};

template <class Tr>
__host__ __device__ constexpr SmemPlan make_smem_plan(const DwPwRun& run) {
  const int in = run.stages * Tr::kInStageBytes;
  const int epilogue = Tr::kScratchBytes + (run.splits > 1 ? Tr::kPartialBytes : 0);
  const int region0 = run.own_scratch ? in + epilogue : (in > epilogue ? in : epilogue);
  const int off_taps = region0;
  const int off_w = off_taps + run.taps_stages * Tr::kTapsStageBytes;
  const int off_a = off_w + run.w_stages * Tr::kWStageBytes;
  return SmemPlan{run.own_scratch ? in : 0, off_taps, off_w, off_a, off_a + run.a_slots * Tr::kASlotBytes};
}

}  // namespace dw_pw_detail
}  // namespace jax_fcm
