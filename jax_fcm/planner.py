"""FusePlanner-style cost model (DESIGN.md §2) for depthwise -> pointwise
pairs: bytes of global-memory traffic of the unfused pair (XLA: DW writes the
intermediate, PW reads it back) and of the fused kernel with a given tile
configuration, FLOPs, a predicted time on a GpuSpec, and the decision.

Pure Python: it plans for any preset without a GPU. The fused kernel's tile
choice itself comes from jax_fcm.tiling (fitted to measurements). The fuse
decision follows what was measured (fused_measured_faster; the unfused
option is jax_fcm.depthwise then XLA's 1x1 convolution). The traffic
model's times are calibrated on H100 measurements (FUSED_CALIBRATION,
UNFUSED_CALIBRATION: within ~16 % rms) and reported, but do not decide: on
the 32 recorded H100 layers the calibrated times name the faster option on
26, the measured rule picks within 5 % of it on all."""

from __future__ import annotations

import dataclasses
import math

from jax_fcm import _args, tiling
from jax_fcm.gpu import GpuSpec, detect


@dataclasses.dataclass(frozen=True)
class PairLayer:
    """DW k x k (stride, SAME padding) on an N x H x W x C input, then PW to Cout."""

    n: int
    h: int
    w: int
    c: int
    cout: int
    k: int = 3
    stride: int = 1
    itemsize: int = 2
    tensor_cores: bool = True

    @property
    def ho(self) -> int:
        return math.ceil(self.h / self.stride)

    @property
    def wo(self) -> int:
        return math.ceil(self.w / self.stride)


@dataclasses.dataclass(frozen=True)
class Traffic:
    """Global-memory bytes a kernel (or a chain of kernels) issues, the unique
    bytes that must come from DRAM, FLOPs split by unit, and kernel launches."""

    issued: int
    unique: int
    fp32_flops: int
    tensor_flops: int
    launches: int


def unfused_traffic(layer: PairLayer) -> Traffic:
    """XLA's DW then PW: the intermediate is written once and read once."""
    b = layer.itemsize
    x = layer.n * layer.h * layer.w * layer.c * b
    mid = layer.n * layer.ho * layer.wo * layer.c * b
    y = layer.n * layer.ho * layer.wo * layer.cout * b
    weights = (layer.k * layer.k * layer.c + layer.c + layer.c * layer.cout + layer.cout) * b
    total = x + 2 * mid + y + weights
    return Traffic(issued=total, unique=total, fp32_flops=dw_flops(layer), tensor_flops=pw_flops(layer), launches=2)


def fused_traffic(layer: PairLayer, cfg: tiling.DwPwConfig) -> Traffic:
    """The fused kernel: each block reads its input tile with halo (clipped to the
    image) for its channel slice, the depthwise taps and the pointwise rows of
    its channel tiles; the output is written once; no intermediate."""
    b = layer.itemsize
    rows = math.ceil(layer.ho / cfg.tile_h)
    cols = math.ceil(layer.wo / cfg.tile_w)
    co_tiles = math.ceil(layer.cout / cfg.tile_n)
    passes = min(cfg.cout_tiles_per_block, co_tiles)
    groups = math.ceil(co_tiles / passes)
    in_h = min((cfg.tile_h - 1) * layer.stride + layer.k, layer.h)
    in_w = min((cfg.tile_w - 1) * layer.stride + layer.k, layer.w)
    tiles = layer.n * rows * cols
    # Summed over a cluster's channel slices, each (tile, group) reads all C once.
    x_reads = tiles * groups * in_h * in_w * layer.c * b
    dw_weights = (layer.k * layer.k + 1) * layer.c * b
    pw_weights = passes * (layer.c + 1) * cfg.tile_n * b
    w_reads = tiles * groups * (dw_weights + pw_weights)
    y = layer.n * layer.ho * layer.wo * layer.cout * b
    unique = (layer.n * layer.h * layer.w * layer.c * b + y
              + (layer.k * layer.k * layer.c + layer.c + layer.c * layer.cout + layer.cout) * b)
    dw = dw_flops(layer) * groups  # the depthwise is recomputed per output-channel group
    return Traffic(issued=x_reads + w_reads + y, unique=unique, fp32_flops=dw, tensor_flops=pw_flops(layer), launches=1)


def expansion_bytes(layer: PairLayer, cin: int) -> int:
    """DRAM bytes of an inverted-residual block's 1x1 expansion Cin -> C run on
    its own (XLA): its input and weights read, the expanded tensor written;
    0 where the block has no expansion (cin == C)."""
    if cin == layer.c:
        return 0
    return (layer.n * layer.h * layer.w * (cin + layer.c) + cin * layer.c + layer.c) * layer.itemsize


def whole_block_bytes(layer: PairLayer, cin: int) -> int:
    """Compulsory DRAM bytes of the whole block (1x1 expansion -> DW -> PW) as
    one kernel: its input, output and weights once (a lower bound: halo
    re-reads depend on the kernel: jax_fcm.mbconv recomputes the halo). Residual
    adds are not counted here or in the other options."""
    weights = (cin * layer.c + layer.c if cin != layer.c else 0) + (layer.k * layer.k + 1) * layer.c
    weights += layer.c * layer.cout + layer.cout
    activations = layer.n * (layer.h * layer.w * cin + layer.ho * layer.wo * layer.cout)
    return (activations + weights) * layer.itemsize


def _pw_dw_weight_bytes(layer: PairLayer, cin: int) -> int:
    """The expansion's (Cin x C + C) and the depthwise conv's ((k*k + 1) x C) weights and biases."""
    return (cin * layer.c + layer.c + (layer.k * layer.k + 1) * layer.c) * layer.itemsize


def pw_dw_traffic(layer: PairLayer, cin: int, tile: int = 8) -> Traffic:
    """The 1x1 expansion Cin -> C fused into the depthwise conv
    (jax_fcm.pw_dw's kernel), tile x tile depthwise outputs per
    block: each block reads its input window with halo (clipped to the
    image) over Cin channels and both layers' weights, recomputes the
    expansion over the whole window (halo included) on tensor cores, and
    writes the depthwise result; the expanded tensor never reaches memory."""
    b = layer.itemsize
    tiles = layer.n * math.ceil(layer.ho / tile) * math.ceil(layer.wo / tile)
    in_h = min((tile - 1) * layer.stride + layer.k, layer.h)
    in_w = min((tile - 1) * layer.stride + layer.k, layer.w)
    weights = _pw_dw_weight_bytes(layer, cin)
    out = layer.n * layer.ho * layer.wo * layer.c * b
    issued = tiles * (in_h * in_w * cin * b + weights) + out
    unique = layer.n * layer.h * layer.w * cin * b + weights + out
    return Traffic(issued=issued, unique=unique, fp32_flops=dw_flops(layer),
                   tensor_flops=2 * tiles * in_h * in_w * cin * layer.c, launches=1)


# Where jax_fcm.pw_dw's fused kernel measured faster than its split path
# (XLA's 1x1 conv, then jax_fcm.depthwise). H100, 2026-12-07,
# docs/data/pw_dw_h100.csv (8 MobileNetV2 / EfficientNet-B0
# pairs x N = 1, 8, 64 bf16 and N = 1, 64 float32): with 3x3 depthwise
# convs fused won on every pair (1.1-2.8x the split time) except the
# heaviest expansions at N = 64 (160 -> 960 at 7x7: 0.67x bf16, 0.40x f32;
# 64 -> 384 at 14x14: 0.98x bf16, 0.88x f32); with 5x5 (the tile's halo
# recomputes 2.25x the expansion) it lost at every N >= 8 (0.17-0.50x) and
# at best tied at N = 1. The rule below takes the measured choice on all 36
# of the 40 timed (pair, N, dtype) cases whose two paths differ by more than
# 5 % (tests/test_pw_dw.py checks it on that file).
PW_DW_KERNEL_SIZES = (3,)
PW_DW_LIGHT_MACS = 16_000          # expansion multiply-adds per output pixel (Cin x Cmid x stride^2)
PW_DW_MAX_HEAVY_MACS = 100_000_000  # heavier expansions: fused only below this many in total


def pw_dw_choice(x_shape, cmid: int, k: int, stride: int, dtype, tensor_cores: bool = True,
                 gpu: GpuSpec | None = None) -> tuple[bool, str]:
    """Whether a 1x1 expansion Cin -> Cmid followed by a k x k depthwise conv
    runs as one jax_fcm.pw_dw kernel (jax_fcm.pw_dw's default), and why. The
    fused kernel recomputes the expansion over each 8x8 tile's halo (it does
    not share it between tiles): it pays with 3x3 depthwise convs where the
    expansion is light per pixel or small in total (PW_DW_* above, from
    measurements). The traffic model's calibrated times (pw_dw_traffic,
    unfused_pw_dw_traffic) are reported in the reason, not used to decide."""
    import jax.numpy as jnp

    *lead, h, w, cin = x_shape
    gpu = gpu or detect()
    n = math.prod(lead) or 1
    layer = PairLayer(n=n, h=h, w=w, c=cmid, cout=cmid, k=k, stride=stride, itemsize=jnp.dtype(dtype).itemsize,
                      tensor_cores=tensor_cores)
    fused, unfused = pw_dw_traffic(layer, cin), unfused_pw_dw_traffic(layer, cin)
    t_fused = predicted_us(fused, gpu, tensor_cores, layer.itemsize, FUSED_CALIBRATION)
    t_unfused = predicted_us(unfused, gpu, tensor_cores, layer.itemsize, UNFUSED_CALIBRATION)
    recompute = fused.tensor_flops / unfused.tensor_flops
    model = (f"model: {t_fused:.1f} us fused ({recompute:.2f}x the expansion's work, halo recomputed) vs "
             f"{t_unfused:.1f} us split (fused moves {1 - fused.unique / unfused.unique:.0%} fewer DRAM bytes)")
    macs_per_pixel = cin * cmid * stride * stride
    total = macs_per_pixel * n * layer.ho * layer.wo
    if k not in PW_DW_KERNEL_SIZES:
        return False, f"{k}x{k} depthwise: the recomputed halo measured slower than split; {model}"
    if macs_per_pixel <= PW_DW_LIGHT_MACS:
        return True, f"{macs_per_pixel:,} expansion multiply-adds per output pixel: measured faster fused; {model}"
    if total <= PW_DW_MAX_HEAVY_MACS:
        return True, f"{total / 1e6:.0f}M expansion multiply-adds in all: measured faster fused; {model}"
    return False, (f"{macs_per_pixel:,} expansion multiply-adds per output pixel, {total / 1e6:.0f}M in all: "
                   f"measured faster split; {model}")


def unfused_pw_dw_traffic(layer: PairLayer, cin: int) -> Traffic:
    """The 1x1 expansion and the depthwise conv as two kernels: the expanded
    tensor written once and read once."""
    b = layer.itemsize
    expanded = layer.n * layer.h * layer.w * layer.c * b
    total = (layer.n * layer.h * layer.w * cin * b + 2 * expanded + _pw_dw_weight_bytes(layer, cin)
             + layer.n * layer.ho * layer.wo * layer.c * b)
    return Traffic(issued=total, unique=total, fp32_flops=dw_flops(layer),
                   tensor_flops=2 * layer.n * layer.h * layer.w * cin * layer.c, launches=2)


def dw_flops(layer: PairLayer) -> int:
    return 2 * layer.n * layer.ho * layer.wo * layer.c * layer.k * layer.k


def pw_flops(layer: PairLayer) -> int:
    return 2 * layer.n * layer.ho * layer.wo * layer.c * layer.cout


@dataclasses.dataclass(frozen=True)
class Calibration:
    """What a kernel reaches of the GPU's peaks, fitted to its measured times:
    the fraction of DRAM / L2 bandwidth, the fraction of the compute peaks,
    and a fixed cost per launch (launch, ramp-up and tail of one kernel)."""

    bandwidth: float = 1.0
    compute: float = 1.0
    launch_us: float | None = None  # None: the GpuSpec's launch_us


# Fitted by planner_validation.fit_calibration (least squares on log time,
# grid search) to the H100's measured times of the DW->PW layer suite: the
# fused kernel over N = 1, 8, 64 (docs/data/bench_h100_345ccd7.csv, kernel
# v6) and the unfused path the layers take, jax_fcm.depthwise + XLA's 1x1
# conv, over N = 8, 64 (docs/data/bench_h100_split_n8_n64.csv). Uncalibrated
# the model was 1.1-6x under the measured times (the fused kernel is bound by
# instruction issue and latency, not DRAM); calibrated its rms error is 16 %
# (fused, 48 layers: 81 % within 1.25x, worst 1.52x) and 16 % (unfused, 32
# layers: 84 % within 1.25x, worst 1.57x). Other GPUs scale by their own
# peaks (an assumption: only the H100 was measured).
FUSED_CALIBRATION = Calibration(bandwidth=0.58, compute=0.127, launch_us=6.75)
UNFUSED_CALIBRATION = Calibration(bandwidth=0.68, compute=0.139, launch_us=3.0)


def roofline_terms(t: Traffic, gpu: GpuSpec, tensor_cores: bool = True, itemsize: int = 2) -> tuple[float, float]:
    """(memory µs, compute µs) at the GPU's peaks: the DRAM time of the unique
    bytes or the L2 time of all issued bytes, whichever is longer; the CUDA-core
    and tensor-core FLOPs at their rates. Bytes/us = GB/s * 1e3; flop/us = TFLOP/s * 1e6."""
    # tensor_tflops is the 16-bit rate: TF32 runs at half of it, int8 at twice.
    tensor = gpu.tensor_tflops * {1: 2.0, 2: 1.0}.get(itemsize, 0.5)
    if not tensor_cores:
        tensor = gpu.fp32_tflops
    compute = t.fp32_flops / (gpu.fp32_tflops * 1e6) + t.tensor_flops / (tensor * 1e6)
    memory = max(t.unique / (gpu.dram_gbs * 1e3), t.issued / (gpu.l2_gbs * 1e3))
    return memory, compute


def predicted_us(t: Traffic, gpu: GpuSpec, tensor_cores: bool = True, itemsize: int = 2,
                 calibration: Calibration = Calibration()) -> float:
    """max(memory / bandwidth fraction, compute / compute fraction) + launches x
    launch cost; the default Calibration() is the plain roofline at the peaks."""
    memory, compute = roofline_terms(t, gpu, tensor_cores, itemsize)
    launch = gpu.launch_us if calibration.launch_us is None else calibration.launch_us
    return max(memory / calibration.bandwidth, compute / calibration.compute) + t.launches * launch


@dataclasses.dataclass(frozen=True)
class PairPlan:
    layer: PairLayer
    fuse: bool
    config: tiling.DwPwConfig
    fused: Traffic
    unfused: Traffic
    fused_us: float
    unfused_us: float
    reason: str


# Where the fused kernel measured faster than the unfused option the layers
# take otherwise: jax_fcm.depthwise (faster than XLA's depthwise convolution
# on every layer timed, use_depthwise_kernel) then XLA's 1x1 convolution. H100,
# commit 2431d77 + the "split" bench column, docs/data/bench_h100_split_n8_n64.csv
# (8 pairs x N = 8, 64 x float32, bfloat16): fused wins on output maps of at
# least 28 x 28 (1.04-1.70x; bf16 28x28x192 at N = 64 0.97x), except float32
# stride-2 and 7x7 pairs on more than 8 images of 28 x 28 outputs (0.81-0.99x);
# the unfused option wins on 14 x 14 and 7 x 7 maps (0.73-0.99x; only C = 384
# at N = 64 went the other way, 1.10-1.20x). On that data the rule's choices
# are within 1 % of the best per-layer choice. (Against XLA's two
# convolutions, kernel v6 fused won on every 16-bit pair; the standalone
# depthwise kernel took most of that lead on the deep pairs.)
FUSE_MIN_OUTPUT_PIXELS = 28 * 28  # per image
FUSE_MAX_PIXELS_FLOAT32_STRIDED_OR_K7 = 8 * 28 * 28  # N x Ho x Wo


def fused_measured_faster(layer: PairLayer) -> bool:
    """Whether pairs like this one measured faster fused than unfused (see
    FUSE_MIN_OUTPUT_PIXELS)."""
    if layer.ho * layer.wo < FUSE_MIN_OUTPUT_PIXELS:
        return False
    wide_float32 = layer.itemsize == 4 and (layer.stride == 2 or layer.k == 7)
    return not (wide_float32 and layer.n * layer.ho * layer.wo > FUSE_MAX_PIXELS_FLOAT32_STRIDED_OR_K7)


def plan_pair(layer: PairLayer, gpu: GpuSpec) -> PairPlan:
    """Fuse or not, with the fused kernel's tile configuration, the traffic
    model's calibrated times and the reason."""
    cfg = tiling.choose_config(layer.n, layer.ho, layer.wo, layer.c, layer.cout, layer.k, layer.stride,
                               layer.itemsize, tensor_cores=layer.tensor_cores, gpu=gpu)
    fused, unfused = fused_traffic(layer, cfg), unfused_traffic(layer)
    t_fused = predicted_us(fused, gpu, layer.tensor_cores, layer.itemsize, FUSED_CALIBRATION)
    t_unfused = predicted_us(unfused, gpu, layer.tensor_cores, layer.itemsize, UNFUSED_CALIBRATION)
    fuse = fused_measured_faster(layer)
    saved = 1 - fused.unique / unfused.unique
    per_image = layer.ho * layer.wo
    if fuse:
        reason = f"{layer.ho}x{layer.wo} outputs per image: measured faster fused; {saved:.0%} fewer DRAM bytes"
    elif per_image < FUSE_MIN_OUTPUT_PIXELS:
        reason = (f"{layer.ho}x{layer.wo} outputs per image (< 28x28): jax_fcm.depthwise + XLA 1x1 measured faster, "
                  f"although fused moves {saved:.0%} fewer DRAM bytes")
    else:
        reason = (f"float32 stride-2 / 7x7 pair on {layer.n * per_image} output pixels: jax_fcm.depthwise + XLA 1x1 "
                  "measured faster")
    return PairPlan(layer, fuse, cfg, fused, unfused, t_fused, t_unfused, reason)


def should_fuse(x_shape, cout: int, k: int, stride: int, itemsize: int, gpu: GpuSpec | None = None) -> bool:
    """plan_pair's decision for an NHWC input shape (extra leading axes fold
    into N), as the Flax layers ask it at trace time."""
    *lead, h, w, c = x_shape
    layer = PairLayer(math.prod(lead), h, w, c, cout, k, stride, itemsize)
    return plan_pair(layer, gpu or detect()).fuse  # detect: the running GPU, the H100 preset without one


# Activations the whole-block kernel measured faster with. With SiLU on the
# expanded tensor (MobileViT-S, H100, bf16, N = 64, scripts/model_plans.py)
# the model ran 1.16x the stock time with every block as jax_fcm.mbconv, but
# 0.90x with the blocks split (pairs as jax_fcm.depthwise + XLA 1x1) and
# 0.92x with fused pairs: an exponential and a division per expanded element
# on the CUDA cores outweigh the traffic the block saves, where ReLU6 blocks
# (MobileNetV2, EfficientNet-Lite0) win 1.06-2.85x.
BLOCK_FUSE_ACTIVATIONS = ("none", "relu", "relu6")


def should_fuse_block(x_shape, cout: int, k: int, stride: int, itemsize: int, activation: str = "relu6") -> bool:
    """Whether a whole inverted-residual block (1x1 expansion included) runs
    as one jax_fcm.mbconv kernel rather than an XLA expansion + the DW->PW
    pair. From the H100 block suite (docs/benchmarks.md "MBConv blocks",
    N = 8 and 64, vs that pair path): faster on every block with >= 28 x 28
    output pixels (1.06-2.85x), and for 16-bit 3x3 blocks down to 14 x 14
    (0.96-2.02x); slower on 7 x 7 outputs (0.33-0.85x) and on float32 or 5x5
    blocks at 14 x 14 (0.63-0.99x). Cout matters only through the tiling.
    Only for the activations in BLOCK_FUSE_ACTIVATIONS (not SiLU)."""
    del cout
    if activation not in BLOCK_FUSE_ACTIVATIONS:
        return False
    *_, h, w, _ = x_shape
    pixels = math.ceil(h / stride) * math.ceil(w / stride)
    return pixels >= 28 * 28 or (itemsize == 2 and k == 3 and pixels >= 14 * 14)


def use_depthwise_kernel(k: int, stride: int) -> bool:
    """Whether an unfused depthwise convolution runs as jax_fcm.depthwise
    rather than XLA's: it measured faster on every layer of the depthwise
    suite (H100, commit 2431d77, docs/benchmarks.md "Standalone depthwise";
    15 MobileNetV2 / ConvNeXt / EfficientNet layers x N = 1, 8, 64 x float32
    and bfloat16: 1.09-3.6x), so wherever the kernel exists."""
    return k in _args.SUPPORTED_KERNEL_SIZES and stride in _args.SUPPORTED_STRIDES


def depthwise_kernel(n: int, ho: int, wo: int, c: int, k: int, stride: int, gpu: GpuSpec | None = None) -> str:
    """Which CUDA kernel jax_fcm.depthwise runs for an N x Ho x Wo x C output
    on `gpu`, as the launcher decides it (the C++ use_depthwise_rows): "7x7
    rows, 7x28 tiles" (the large-batch 7x7 kernel) or "general, 8x8 tiles"."""
    from jax_fcm import _ffi  # the native module; imported here, like pw_pw_macs_per_pixel's

    launch = _ffi.native().depthwise_launch(n, ho, wo, c, k, stride, (gpu or detect()).sm_count)
    name = "7x7 rows" if launch["kernel"] == "rows" else "general"
    return f"{name}, {launch['tile'][0]}x{launch['tile'][1]} tiles"


# Where jax_fcm.pointwise measured faster than XLA's 1x1 convolution: H100,
# kernels of commit 0674d98, docs/data/pointwise_h100_0674d98.csv (13 MobileNetV2
# and ConvNeXt 1x1 layers x N = 1, 8, 64 x float32, bfloat16). Faster on every
# layer with at most 96 input channels whose launch needs no channel split
# (14 of 14: 1.05-2.09x), and in float32 on a single 64-pixel tile (N = 1 at
# 7x7: 1.07-1.55x). Slower on deep layers (Cin >= 144) from N = 8 up
# (0.30-0.99x: XLA's GEMMs take bigger tiles there) and on shallow layers that
# need a split (0.85-0.99x, N = 8 at 14x14).
#
# With the Hopper wgmma kernel (commit 4206ead, H100, bf16; the launch plan
# picks it for 16-bit Cin >= 128, Cout >= 64 with half a wave of blocks,
# docs/data/pointwise_h100_4206ead_bf16.csv): faster than XLA on the layers
# that widen (Cout >= Cin: 160 -> 960 1.14x, 320 -> 1280 1.33x, 768 -> 3072
# 1.13x at N = 64 and 1.45x at N = 8, 576 -> 96 1.00x aside), slower on
# those that narrow (960 -> 320 0.97x, 384 -> 96 0.91x, 3072 -> 768 0.68x).
POINTWISE_MAX_CIN = 96
POINTWISE_FLOAT32_MAX_PIXELS = 64


def use_pointwise_kernel(x_shape, cout: int, dtype, gpu: GpuSpec | None = None) -> bool:
    """Whether a 1x1 convolution of an NHWC input (extra leading axes fold
    into N) to `cout` channels runs as jax_fcm.pointwise rather than XLA's
    (see POINTWISE_MAX_CIN and the wgmma note above it), as the Flax layers
    ask it at trace time."""
    import jax.numpy as jnp

    from jax_fcm.pointwise_op import pointwise_plan  # the C++ launch plan; imported here, like plan_block's

    *lead, h, w, cin = x_shape
    pixels = math.prod(lead) * h * w
    if jnp.dtype(dtype) == jnp.float32 and pixels <= POINTWISE_FLOAT32_MAX_PIXELS:
        return True
    gpu = gpu or detect()
    plan = pointwise_plan(dtype, pixels, cin, cout, sm_count=gpu.sm_count, clusters=gpu.clusters, wgmma=gpu.wgmma)
    if plan["wgmma"]:
        return cout >= cin
    return cin <= POINTWISE_MAX_CIN and plan["splits"] == 1


# Where jax_fcm.conv2d measured faster than XLA's convolution: H100, tree of
# 26c057b (docs/benchmarks.md, "Dense convolutions"), the zoo's 12 dense
# layers x N = 1, 8, 64 x bfloat16, float32. XLA runs the stems (Cin = 3) on
# cuDNN's CUDA-core engine plus a padding copy, 7-11x above the memory floor:
# the kernel took every stem at every N (1.2-2.8x). On the full 3x3 convs and
# the 2x2 downsamplings cuDNN's implicit GEMMs beat the mma.sync GEMM from
# N = 8 (0.3-0.95x) except on small outputs, where one cuDNN launch is
# latency-bound and channel splits spread the kernel's K over the GPU: N = 1
# at 14x14 and 7x7 with at most 160 x 196 ... 768 x 49 output values
# (1.07-1.47x); 196 pixels x 384 channels was already slower (0.85x), and so
# was N = 8 at 7x7 (392 pixels, 0.84-0.95x).
CONV2D_MAX_WINDOW = 64             # kh*kw*Cin of the layers it always takes (stems: 27, 48)
CONV2D_SMALL_OUTPUT_PIXELS = 256   # N*Ho*Wo ...
CONV2D_SMALL_OUTPUT_VALUES = 40_960  # ... and N*Ho*Wo*Cout of the small layers it takes


def conv2d_choice(x_shape, kernel_shape, strides=1, padding="SAME") -> tuple[bool, str]:
    """(run jax_fcm.conv2d rather than XLA's convolution, the one-line reason)
    for a dense convolution of an NHWC input (extra leading axes fold into N)
    with an HWIO kernel (see CONV2D_MAX_WINDOW and the measurements above it)."""
    *lead, h, w, cin = x_shape
    kh, kw, _, cout = kernel_shape
    window = kh * kw * cin
    if window <= CONV2D_MAX_WINDOW:
        return True, (f"window of {window} values (<= {CONV2D_MAX_WINDOW}): XLA's CUDA-core convolution + padding copy "
                      "measured slower at every N")
    _, _, ho, wo = _args.dense_window(strides, padding, h, w, kh, kw)
    pixels = math.prod(lead) * ho * wo
    if pixels <= CONV2D_SMALL_OUTPUT_PIXELS and pixels * cout <= CONV2D_SMALL_OUTPUT_VALUES:
        return True, (f"{pixels} output pixels x {cout} channels: small enough that split channels fill the GPU "
                      "and XLA's single launch is latency-bound (measured faster at N = 1)")
    return False, (f"window of {window} values over {pixels} output pixels: XLA's tensor-core implicit GEMM measured "
                   "faster")


def use_conv2d_kernel(x_shape, kernel_shape, strides=1, padding="SAME") -> bool:
    """Whether a dense convolution runs as jax_fcm.conv2d rather than XLA's
    (conv2d_choice), as the Flax layers ask it at trace time."""
    return conv2d_choice(x_shape, kernel_shape, strides, padding)[0]


# jax_fcm.pw_pw (two 1x1 convs, the intermediate kept on chip) vs XLA's two
# convolutions, H100, `bench --pw-pw` at N = 1, 8, 64 (commit ec185c2,
# docs/benchmarks.md): in bfloat16 faster where the pair's tensor-core work
# per pixel is small - MobileNetV2's 144 -> 24 -> 144 and 192 -> 32 -> 192
# (1.38-2.07x, N = 1 included) and ConvNeXt's 96 -> 384 -> 96 from N = 8
# (2.03x, 1.96x at N = 64; 0.70x at N = 1, one partial wave of heavy blocks) -
# and slower on MobileViT's 144 -> 288 -> 144 (0.39-0.83x) and ConvNeXt's
# 192 -> 768 -> 192 (0.26-0.69x below N = 64, 1.03x at 64), where XLA's GEMMs
# (cuBLAS-class tiles) win. float32 (TF32) never gained (0.44-1.02x). The rule
# below reproduces the bfloat16 outcomes but the 1.03x one: multiply-adds per
# pixel (both GEMMs, each output tile recomputing the first; cout padded to
# the tile) at most PW_PW_MAX_MACS, and a wave of 128-pixel tiles unless they
# are light (at most PW_PW_LIGHT_MACS).
PW_PW_MAX_MACS = 100_000
PW_PW_LIGHT_MACS = 32_000


def pw_pw_macs_per_pixel(cin: int, hidden: int, cout: int) -> int:
    """The pw_pw kernel's multiply-adds per pixel under its output tiling
    (the C++ pw_pw_tile_n): each tile of tile_n channels recomputes the first GEMM."""
    from jax_fcm import _ffi  # the native module; imported here, like pointwise_plan in use_pointwise_kernel

    tile_n = _ffi.native().pw_pw_tile_n(cin, cout)
    return -(-cout // tile_n) * (cin * hidden + hidden * tile_n)


def pw_pw_decision(x_shape, hidden: int, cout: int, dtype, gpu: GpuSpec | None = None) -> tuple[bool, str]:
    """use_pw_pw_kernel's answer and a one-line reason (the plan CLI's)."""
    import jax.numpy as jnp

    *lead, h, w, cin = x_shape
    if jnp.dtype(dtype) == jnp.float32:
        return False, "float32: the TF32 pw_pw kernel never measured faster than XLA's two 1x1s"
    macs = pw_pw_macs_per_pixel(cin, hidden, cout)
    if macs > PW_PW_MAX_MACS:
        return False, f"{macs:,} multiply-adds per pixel > {PW_PW_MAX_MACS:,}: XLA's GEMMs measured faster"
    if macs <= PW_PW_LIGHT_MACS:
        return True, f"{macs:,} multiply-adds per pixel <= {PW_PW_LIGHT_MACS:,} (a light pair)"
    pixel_tiles = -(-math.prod(lead) * h * w // 128)  # 128-pixel blocks per output tile
    sm_count = (gpu or detect()).sm_count
    if pixel_tiles >= sm_count:
        return True, f"{macs:,} multiply-adds per pixel, {pixel_tiles} pixel tiles >= {sm_count} SMs"
    return False, f"{macs:,} multiply-adds per pixel, {pixel_tiles} pixel tiles < {sm_count} SMs (a partial wave)"


def use_pw_pw_kernel(x_shape, hidden: int, cout: int, dtype, gpu: GpuSpec | None = None) -> bool:
    """Whether a PW -> PW pair over an NHWC input (extra leading axes fold
    into N) runs as the jax_fcm.pw_pw kernel rather than XLA's two
    convolutions, by the measurements above: what jax_fcm.pw_pw does by
    default (among the calls its kernel takes)."""
    return pw_pw_decision(x_shape, hidden, cout, dtype, gpu)[0]


def convnext_mlp_plan(x_shape, c: int, dtype, gpu: GpuSpec | None = None) -> tuple[str, str]:
    """How a ConvNeXt block's MLP (C -> 4C, GELU, -> C) over its NHWC input
    runs in flax_models.ConvNeXt(fusion="auto"), and why: "pw_pw" (one
    jax_fcm.pw_pw kernel), "pointwise + XLA" (the expansion on
    jax_fcm.pointwise, the projection XLA's) or "XLA" (both XLA's)."""
    from jax_fcm.pw_pw_op import kernel_refusal  # the native kernel limits; imported here, like pointwise_plan's

    reason = kernel_refusal(dtype, c, 4 * c, c)
    if reason is None:
        fused, reason = pw_pw_decision(x_shape, 4 * c, c, dtype, gpu)
        if fused:
            return "pw_pw", reason
    expansion = "pointwise + XLA" if use_pointwise_kernel(x_shape, 4 * c, dtype, gpu) else "XLA"
    return expansion, f"no pw_pw: {reason}"


# jax_fcm.convnext_block (its fused kernel) vs XLA running the same block,
# H100, bfloat16, `bench --convnext` at N = 1, 8, 64 (docs/benchmarks.md): the
# 96-channel stage (73,728 multiply-adds per pixel) faster at every N (1.12x,
# 2.10x, 1.86x), the 192-channel stage (then 442,368: two 96-column tiles,
# each recomputing the first GEMM) only with a wave of blocks - 0.55x at N = 1
# (10 blocks), 0.95x at N = 8 (66), 1.20x at N = 64 (524 on 132 SMs). The
# rule: the fused kernel where its work per pixel is at most PW_PW_MAX_MACS or
# its blocks (the C++ convnext_block_tile) fill a wave of the SMs.


def layer_norm_mlp_choice(x_shape, c: int, dtype, gpu: GpuSpec | None = None,
                          hidden: int | None = None) -> tuple[bool, str]:
    """Whether LayerNorm -> MLP (hidden width 4C unless given) -> residual
    over an NHWC input runs its fused kernel (jax_fcm.layer_norm_mlp's and
    jax_fcm.convnext_block's default; in flax_models.ConvNeXt(fusion="auto")
    the whole block as one convnext_block call), and why; else XLA's
    LayerNorm and residual around the MLP (for ConvNeXt as convnext_mlp_plan
    says)."""
    from jax_fcm.layer_norm_mlp_op import kernel_refusal  # the native kernel limits; imported here, like pw_pw's

    hidden = hidden or 4 * c
    gpu = gpu or detect()
    refusal = kernel_refusal(dtype, c, hidden, gpu)
    if refusal is not None:
        return False, refusal
    from jax_fcm import _ffi  # the native module, as in pw_pw_macs_per_pixel

    tile_m, tile_n = _ffi.native().convnext_block_tile(c)
    macs = -(-c // tile_n) * (c * hidden + hidden * tile_n)  # each column tile recomputes the first GEMM
    if macs <= PW_PW_MAX_MACS:
        return True, f"{macs:,} multiply-adds per pixel <= {PW_PW_MAX_MACS:,}: one kernel measured faster at every N"
    *lead, h, w, _ = x_shape
    blocks = -(-math.prod(lead) * h * w // tile_m) * -(-c // tile_n)
    if blocks >= gpu.sm_count:
        return True, f"{macs:,} multiply-adds per pixel, {blocks} blocks >= {gpu.sm_count} SMs"
    return False, (f"{macs:,} multiply-adds per pixel, {blocks} blocks < {gpu.sm_count} SMs (a partial wave: "
                   "XLA's GEMMs measured faster)")


def convnext_tail_bytes(x_shape, c: int, itemsize: int, option: str) -> int:
    """DRAM bytes of what follows a ConvNeXt block's depthwise conv
    (LayerNorm, MLP, layer-scaled residual) run as `option`: "convnext_block"
    reads the depthwise output and the block input and writes the output
    once; otherwise XLA's LayerNorm (a read and a write), the MLP
    (mlp_bytes; fused for "pw_pw") and XLA's residual (two reads, a write)."""
    pixels = math.prod(x_shape[:-1])
    if option == "convnext_block":  # the MLP's fused bytes + the residual's read
        return pixels * c * itemsize + mlp_bytes(x_shape, c, itemsize, fused=True)
    return 5 * pixels * c * itemsize + mlp_bytes(x_shape, c, itemsize, fused=option == "pw_pw")


def mlp_bytes(x_shape, c: int, itemsize: int, fused: bool) -> int:
    """DRAM bytes of a ConvNeXt MLP: input, output and both weights once,
    plus, as two convolutions, the 4C intermediate written and read back."""
    pixels = math.prod(x_shape[:-1])
    weights = 2 * 4 * c * c + 4 * c + c
    return (2 * pixels * c + weights + (0 if fused else 2 * pixels * 4 * c)) * itemsize


def plan_block(layer: PairLayer, cin: int, gpu: GpuSpec, activation: str = "relu6") -> str:
    """The option for the whole inverted-residual block around a pair whose
    block input has `cin` channels: "mbconv" (one jax_fcm.mbconv kernel),
    "pair" (XLA expansion + the pair as planned), "pair (window > smem)"
    where the whole-block kernel's input window does not fit a block's
    shared memory on this GPU, or "–" without an expansion."""
    from jax_fcm import mbconv_config  # tiling-level module; imported here to keep this one's imports minimal

    if cin == layer.c:
        return "–"
    config = mbconv_config.choose_config(layer.n, layer.ho, layer.ho, layer.c, layer.cout, gpu.sm_count)
    need = mbconv_config.smem_bytes(config, k=layer.k, stride=layer.stride, cin=cin, itemsize=layer.itemsize)
    if need > gpu.smem_per_block:
        return "pair (window > smem)"
    x_shape = (layer.n, layer.h, layer.w, cin)
    fuse = should_fuse_block(x_shape, layer.cout, layer.k, layer.stride, layer.itemsize, activation)
    return "mbconv" if fuse else "pair"
