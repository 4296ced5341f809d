"""Benchmark CLI: `python -m jax_fcm.bench`.

Times the fused DW->PW op against XLA (the same layer as lax.conv DW then PW
under jit) and, where PyTorch with CUDA is importable, cuDNN (channels_last),
over the layer suite of DESIGN.md section 6, and relates each to the fused HBM
floor: (input + output + weight bytes) / copy bandwidth measured in the same run.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np

import jax_fcm
from jax_fcm import (_op_bench, _timing, _torch_timing, bench_blocks, bench_conv2d, bench_convnext, bench_depthwise,
                     bench_int8, bench_pointwise, bench_pw_dw, bench_pw_pw, bench_train, gpu, planner_validation,
                     tiling)


@dataclasses.dataclass(frozen=True)
class Layer:
    name: str
    hw: int
    c: int
    cout: int
    k: int = 3
    stride: int = 1
    dw_activation: str | None = "relu6"
    pw_activation: str | None = None


SUITE = (
    Layer("mv1_112_32_64", 112, 32, 64, dw_activation="relu", pw_activation="relu"),
    Layer("mv2_56_144_24", 56, 144, 24),
    Layer("mv2_28_192_32", 28, 192, 32),
    Layer("mv2_14_384_64", 14, 384, 64),
    Layer("mv2_14_576_96", 14, 576, 96),
    Layer("mv2_7_960_160", 7, 960, 160),
    Layer("mv2_56s2_144_32", 56, 144, 32, stride=2),
    Layer("convnext_56_96_384_k7", 56, 96, 384, k=7, dw_activation=None, pw_activation="gelu_exact"),
)


def layer_bytes(layer: Layer, n: int, dtype) -> int:
    """Fewest bytes a fused kernel must move: input, output and weights once."""
    size = jnp.dtype(dtype).itemsize
    ho = -(-layer.hw // layer.stride)
    elems = (n * layer.hw * layer.hw * layer.c + n * ho * ho * layer.cout
             + layer.k * layer.k * layer.c + layer.c * layer.cout + layer.c + layer.cout)
    return elems * size


def make_args(layer: Layer, n: int, dtype, seed: int):
    rng = np.random.default_rng(seed)

    def arr(shape, scale):
        return jnp.asarray(rng.standard_normal(shape) * scale, dtype)

    return (arr((n, layer.hw, layer.hw, layer.c), 1.0), arr((layer.k, layer.k, 1, layer.c), 1.0 / layer.k),
            arr((1, 1, layer.c, layer.cout), layer.c ** -0.5), arr((layer.c,), 0.1), arr((layer.cout,), 0.1))


def op(layer: Layer, implementation, config=None):
    """The pair as jax_fcm.dw_pw(implementation=...); "split" is the unfused
    option the Flax layers take with fused="auto" where fusing does not pay."""

    def f(x, dw, pw, dwb, pwb):
        return jax_fcm.dw_pw(x, dw, pw, dwb, pwb, strides=layer.stride, padding="SAME",
                             dw_activation=layer.dw_activation, pw_activation=layer.pw_activation,
                             implementation=implementation, config=config)

    return f


def sweep_configs(layer: Layer, n: int, dtype, arg_sets, timer) -> list[dict]:
    """Device time of every compiled tile configuration for one layer."""
    ho = -(-layer.hw // layer.stride)
    spec, itemsize = gpu.detect(jax.default_backend()), jnp.dtype(dtype).itemsize
    chosen = tiling.choose_config(n, ho, ho, layer.c, layer.cout, layer.k, layer.stride, itemsize, gpu=spec)
    rows = []
    for cfg in tiling.all_configs(layer.cout, layer.c, tiles_per_block=(0, 1), itemsize=itemsize):
        us = timer(op(layer, None, cfg), arg_sets)
        rows.append(dict(layer=layer.name, n=n, dtype=jnp.dtype(dtype).name, tile_h=cfg.tile_h, tile_n=cfg.tile_n,
                         cout_tiles_per_block=cfg.cout_tiles_per_block, channel_splits=cfg.channel_splits,
                         tiles_per_block=cfg.tiles_per_block, channel_chunk=cfg.channel_chunk, us=us,
                         chosen=cfg == chosen,
                         predicted_us=planner_validation.predicted_fused_us(layer, n, itemsize, cfg, spec)))
    report_sweep(rows, planner_validation.label)
    return rows


def report_sweep(rows: list[dict], name) -> None:
    """One progress line per swept layer: the fastest configuration and the
    tile model's choice (name(row): a row's configuration label)."""
    best = min(rows, key=lambda r: r["us"])
    mine = next(r for r in rows if r["chosen"])
    print(f"    sweep: best {name(best)} {best['us']:.1f} us; chosen {name(mine)} {mine['us']:.1f} us",
          file=sys.stderr, flush=True)


def torch_time_us(layer: Layer, n: int, dtype, iters: int) -> float | None:
    """The DW -> PW pair in cuDNN (torch_net_time_us)."""

    def build(torch):
        return torch.nn.Sequential(
            *_torch_timing.depthwise_layers(torch, layer.c, layer.k, layer.stride, layer.dw_activation),
            torch.nn.Conv2d(layer.c, layer.cout, 1), _torch_timing.activation_module(torch, layer.pw_activation))

    return _torch_timing.torch_net_time_us(build, n, layer.c, layer.hw, dtype, iters)


def make_timer(iters: int):
    """Device time (JAX profiler) on a GPU, host wall-clock elsewhere."""
    on_gpu = jax.default_backend() == "gpu"
    if on_gpu:
        return True, lambda f, a: _timing.device_time_us(f, a, iters=iters)
    return False, lambda f, a: _timing.wall_time_us(f, a, iters=iters)


def run_models(args) -> int:
    from flax_models import benchmark  # flax is only needed here

    names = args.models or list(benchmark.MODELS)
    unknown = sorted(set(names) - set(benchmark.MODELS))
    if unknown:
        print(f"unknown models {unknown}; choose from {list(benchmark.MODELS)}", file=sys.stderr)
        return 2
    on_gpu, timer = make_timer(args.iters)
    rows = benchmark.time_models(names, args.batch or [1, 64, 256], args.dtype, timer, args.image_size,
                                 on_row=lambda rows: save_partial(rows, args))
    table = benchmark.format_model_table(rows, jax.devices()[0].device_kind,
                                         "device time (profiler)" if on_gpu else "host wall-clock", args.image_size)
    emit(table, rows, args)
    return 0


def select(names, suite, what: str):
    """The suite entries named (all for no names); None, after a message, if
    some name is unknown."""
    names = names or [entry.name for entry in suite]
    chosen = [entry for entry in suite if entry.name in names]
    unknown = sorted(set(names) - {entry.name for entry in chosen})
    if unknown:
        print(f"unknown {what} {unknown}; choose from {[entry.name for entry in suite]}", file=sys.stderr)
        return None
    return chosen


def run_blocks(args) -> int:
    blocks = select(args.blocks, bench_blocks.SUITE, "blocks")
    if blocks is None:
        return 2
    on_gpu, timer = make_timer(args.iters)
    bandwidth = _timing.copy_bandwidth_gbs(timer)
    rows = bench_blocks.time_blocks(blocks, args.batch or [1, 8, 64], args.dtype, timer, bandwidth,
                                    on_row=lambda rows: save_partial(rows, args))
    table = bench_blocks.format_table(rows, jax.devices()[0].device_kind, bandwidth,
                                      "device time (profiler)" if on_gpu else "host wall-clock")
    emit(table, rows, args)
    return 0


def run_op_suite(args, suite, names) -> int:
    """--depthwise / --pointwise / --pw-pw / --conv2d: an op's layer suite (_op_bench)."""
    layers = select(names, suite.SUITE, "layers")
    if layers is None:
        return 2
    on_gpu, timer = make_timer(args.iters)
    bandwidth = _timing.copy_bandwidth_gbs(timer)

    def torch_timer(layer, n, dtype):
        return None if args.no_torch or not on_gpu else suite.torch_time_us(layer, n, dtype, args.iters)

    rows = _op_bench.time_layers(suite, layers, args.batch or [1, 8, 64], args.dtype, timer, bandwidth, torch_timer,
                                 on_row=lambda rows: save_partial(rows, args))
    table = _op_bench.format_table(suite.OP_NAME, rows, jax.devices()[0].device_kind, bandwidth,
                                   "device time (profiler)" if on_gpu else "host wall-clock")
    emit(table, rows, args)
    return 0


def run_int8(args, pair=bench_int8.DW_PW) -> int:
    """--int8: jax_fcm.dw_pw_int8 on the suite's ReLU/ReLU6 layers; --int8-pw-pw
    (pair PW_PW): jax_fcm.pw_pw_int8 on the PW -> PW suite's (bench_int8)."""
    if pair is bench_int8.DW_PW:
        layers = select(args.int8, bench_int8.suite(SUITE), "int8 layers")
    else:
        layers = select(args.int8_pw_pw, bench_int8.pw_pw_suite(), "int8 PW -> PW layers")
    if layers is None:
        return 2
    on_gpu, timer = make_timer(args.iters)
    bandwidth = _timing.copy_bandwidth_gbs(timer)
    sweep = pair is bench_int8.DW_PW and args.sweep
    rows = bench_int8.time_layers(layers, args.batch or [8, 64], timer, bandwidth,
                                  on_row=lambda rows: save_partial(rows, args),
                                  on_sweep=(lambda rows: write_csv(args.sweep, rows)) if sweep else None, pair=pair)
    table = bench_int8.format_table(rows, jax.devices()[0].device_kind, bandwidth,
                                    "device time (profiler)" if on_gpu else "host wall-clock", pair)
    emit(table, rows, args)
    return 0


def run_int8_model(args) -> int:
    """--int8-model: the int8 MobileNetV1 against the bfloat16 model (bench_int8)."""
    on_gpu, timer = make_timer(args.iters)
    rows = bench_int8.time_mobilenet_v1(args.batch or [8, 64, 256], timer, args.image_size,
                                        on_row=lambda rows: save_partial(rows, args))
    table = bench_int8.format_model_table(rows, jax.devices()[0].device_kind,
                                          "device time (profiler)" if on_gpu else "host wall-clock", args.image_size)
    emit(table, rows, args)
    return 0


def run_training(args, layers) -> int:
    on_gpu, timer = make_timer(args.iters)
    rows = bench_train.time_training(layers, args.batch, args.dtype, timer, make_args, op,
                                     on_row=lambda rows: save_partial(rows, args))
    table = bench_train.format_training_table(rows, jax.devices()[0].device_kind,
                                              "device time (profiler)" if on_gpu else "host wall-clock")
    emit(table, rows, args)
    return 0


def save_partial(rows: list[dict], args) -> None:
    """The rows so far to --csv: a run stopped by a time limit keeps them."""
    if args.csv:
        write_csv(args.csv, rows)


def emit(table: str, rows: list[dict], args) -> None:
    """Prints the table; writes it (--markdown) and the rows (--csv) where asked."""
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    if args.csv:
        write_csv(args.csv, rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jax_fcm.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=None, help="batch sizes (default 1 8 64)")
    parser.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--layers", nargs="+", default=None, help="subset of: " + " ".join(l.name for l in SUITE))
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--no-torch", action="store_true", help="skip the cuDNN (PyTorch) column")
    parser.add_argument("--csv", help="write all rows to this CSV file")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--plot", help="write a PNG bar chart of speed-ups to this file (needs matplotlib)")
    parser.add_argument("--models", nargs="*", default=None,
                        help="time whole Flax models instead of layers (fused vs stock; needs flax): "
                             "mobilenet_v1 mobilenet_v2 efficientnet_lite0 efficientnet_b0 mobilevit_s convnext_tiny (default: all); --batch defaults to "
                             "1 64 256")
    parser.add_argument("--blocks", nargs="*", default=None,
                        help="time whole inverted-residual blocks (jax_fcm.mbconv vs XLA) instead of DW->PW layers: "
                             + " ".join(b.name for b in bench_blocks.SUITE) + " (default: all)")
    parser.add_argument("--depthwise", nargs="*", default=None,
                        help="time standalone depthwise layers (jax_fcm.depthwise vs XLA and cuDNN) instead of DW->PW "
                             "layers: " + " ".join(l.name for l in bench_depthwise.SUITE) + " (default: all)")
    parser.add_argument("--pointwise", nargs="*", default=None,
                        help="time standalone pointwise (1x1) layers (jax_fcm.pointwise vs XLA and cuDNN) instead of "
                             "DW->PW layers: " + " ".join(l.name for l in bench_pointwise.SUITE) + " (default: all)")
    parser.add_argument("--conv2d", nargs="*", default=None,
                        help="time dense convolutions (jax_fcm.conv2d vs XLA and cuDNN) instead of DW->PW layers: "
                             + " ".join(l.name for l in bench_conv2d.SUITE) + " (default: all)")
    parser.add_argument("--pw-dw", nargs="*", default=None,
                        help="time 1x1 -> depthwise pairs (jax_fcm.pw_dw fused and split vs XLA's and cuDNN's two "
                             "convs) instead of DW->PW layers: " + " ".join(
                                 l.name for l in bench_pw_dw.SUITE if l.path == "fused") + " (default: all)")
    parser.add_argument("--pw-pw", nargs="*", default=None,
                        help="time fused PW->PW pairs (jax_fcm.pw_pw vs XLA's and cuDNN's two 1x1 convs) instead of "
                             "DW->PW layers: " + " ".join(l.name for l in bench_pw_pw.SUITE) + " (default: all)")
    parser.add_argument("--convnext", nargs="*", default=None,
                        help="time whole ConvNeXt blocks (jax_fcm.convnext_block vs XLA and PyTorch) instead of DW->PW "
                             "layers: " + " ".join(b.name for b in bench_convnext.SUITE) + " (default: all)")
    parser.add_argument("--int8", nargs="*", default=None,
                        help="time the int8 fused DW->PW (jax_fcm.dw_pw_int8 vs XLA's integer math and our bf16 fused "
                             "kernel) on the ReLU/ReLU6 layers: " + " ".join(
                                 l.name for l in bench_int8.suite(SUITE)) + " (default: all; --batch defaults to 8 64)")
    parser.add_argument("--int8-pw-pw", nargs="*", default=None,
                        help="time the int8 fused PW->PW (jax_fcm.pw_pw_int8 vs XLA's integer math and our bf16 "
                             "jax_fcm.pw_pw) on these layers: " + " ".join(
                                 l.name for l in bench_int8.pw_pw_suite()) + " (default: all; --batch defaults to 8 64)")
    parser.add_argument("--int8-model", action="store_true",
                        help="time MobileNetV1 with its separable blocks in int8 (flax_models.quantized) against the "
                             "bfloat16 model, fused and stock (needs flax; --batch defaults to 8 64 256)")
    parser.add_argument("--image-size", type=int, default=224, help="input size for --models")
    parser.add_argument("--train", action="store_true",
                        help="time forward + backward (all gradients) of each layer instead of the forward")
    parser.add_argument("--validate-planner", metavar="FILE",
                        help="time every option of each layer (all tile configurations and the unfused pair) and "
                             "write the planner's picks, regrets and prediction ratios to this markdown file")
    parser.add_argument("--sweep", help="also time every compiled tile configuration of each layer and write "
                        "them to this CSV (the chosen one is marked)")
    args = parser.parse_args(argv)

    if args.models is not None:
        return run_models(args)
    if args.blocks is not None:
        return run_blocks(args)
    if args.depthwise is not None:
        return run_op_suite(args, bench_depthwise, args.depthwise)
    if args.int8_model:
        return run_int8_model(args)
    if args.int8 is not None:
        return run_int8(args)
    if args.int8_pw_pw is not None:
        return run_int8(args, bench_int8.PW_PW)
    if args.pointwise is not None:
        return run_op_suite(args, bench_pointwise, args.pointwise)
    if args.pw_dw is not None:
        return run_op_suite(args, bench_pw_dw, args.pw_dw)
    if args.pw_pw is not None:
        return run_op_suite(args, bench_pw_pw, args.pw_pw)
    if args.conv2d is not None:
        return run_op_suite(args, bench_conv2d, args.conv2d)
    if args.convnext is not None:
        return run_op_suite(args, bench_convnext, args.convnext)
    args.batch = args.batch or [1, 8, 64]
    layers = [l for l in SUITE if args.layers is None or l.name in args.layers]
    if not layers:
        parser.error(f"no layer matches {args.layers}")
    if args.train:
        return run_training(args, layers)
    on_gpu, timer = make_timer(args.iters)
    device = jax.devices()[0].device_kind
    bandwidth = _timing.copy_bandwidth_gbs(timer)
    print(f"# device: {device}; jax {jax.__version__}; timing: {'device (profiler)' if on_gpu else 'host wall-clock'}; "
          f"copy bandwidth {bandwidth:.0f} GB/s", file=sys.stderr)

    rows, sweep_rows = [], []
    total = len(layers) * len(args.batch) * len(args.dtype)
    for dtype_name in args.dtype:
        dtype = jnp.dtype(dtype_name)
        for n in args.batch:
            for layer in layers:
                nbytes = layer_bytes(layer, n, dtype)
                sets = _timing.rotation_sets(nbytes)
                arg_sets = [make_args(layer, n, dtype, seed) for seed in range(sets)]
                fused = timer(op(layer, None), arg_sets)
                xla = timer(op(layer, "xla"), arg_sets)
                split = timer(op(layer, "split"), arg_sets)
                if args.sweep or args.validate_planner:
                    sweep_rows += sweep_configs(layer, n, dtype, arg_sets, timer)
                    if args.sweep:
                        write_csv(args.sweep, sweep_rows)  # after every layer: partial results survive a timeout
                cudnn = None if (args.no_torch or not on_gpu) else torch_time_us(layer, n, dtype, args.iters)
                floor = nbytes / (bandwidth * 1e9) * 1e6
                rows.append(dict(layer=layer.name, n=n, dtype=dtype_name, fused_us=fused, xla_us=xla, split_us=split,
                                 cudnn_us=cudnn, floor_us=floor, speedup_vs_xla=xla / fused,
                                 speedup_vs_split=split / fused,
                                 speedup_vs_cudnn=(cudnn / fused) if cudnn else None, fused_over_floor=fused / floor,
                                 xla_over_floor=xla / floor))
                print(f"[{len(rows)}/{total}] {dtype_name} N={n} {layer.name}: fused {fused:.1f} us, "
                      f"xla {xla:.1f} us, split {split:.1f} us, floor {floor:.1f} us", file=sys.stderr, flush=True)
                save_partial(rows, args)

    emit(format_table(rows, device, bandwidth), rows, args)
    if args.validate_planner:
        summary = planner_validation.summarize(sweep_rows, rows, layers, gpu.detect(jax.default_backend()),
                                               {name: jnp.dtype(name).itemsize for name in args.dtype})
        with open(args.validate_planner, "w") as f:
            f.write(f"Planner validation on {device}\n\n{summary}\n")
        print(summary)
    if args.plot:
        plot(rows, args.plot, device)
    return 0


def write_csv(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _fmt(v, spec=".1f"):
    return "–" if v is None else format(v, spec)


def format_table(rows, device: str, bandwidth: float) -> str:
    lines = [
        f"Device: {device}; copy bandwidth {bandwidth:.0f} GB/s (read+write); times are device time per call (us).",
        "split: jax_fcm.depthwise then XLA's 1x1 convolution (the unfused option of fused=\"auto\").",
        "",
        "| dtype | N | layer | jax_fcm | XLA | split | cuDNN | floor | vs XLA | vs split | vs cuDNN | fused/floor "
        "| XLA/floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dtype']} | {r['n']} | {r['layer']} | {r['fused_us']:.1f} | {r['xla_us']:.1f} | "
            f"{r['split_us']:.1f} | {_fmt(r['cudnn_us'])} | {r['floor_us']:.1f} | {r['speedup_vs_xla']:.2f}x | "
            f"{r['speedup_vs_split']:.2f}x | {_timing.format_ratio(r['speedup_vs_cudnn'])} | "
            f"{r['fused_over_floor']:.2f} | {r['xla_over_floor']:.2f} |")
    lines += _timing.summary_lines(rows, "layer", {"geomean speed-up vs XLA": "speedup_vs_xla",
                                                   "vs split": "speedup_vs_split", "vs cuDNN": "speedup_vs_cudnn"})
    return "\n".join(lines)


def plot(rows, path: str, device: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib (pip install matplotlib)", file=sys.stderr)
        return
    groups = sorted({(r["dtype"], r["n"]) for r in rows})
    fig, axes = plt.subplots(len(groups), 1, figsize=(10, 2.6 * len(groups)), squeeze=False)
    for ax, key in zip(axes[:, 0], groups):
        group = [r for r in rows if (r["dtype"], r["n"]) == key]
        ax.bar([r["layer"] for r in group], [r["speedup_vs_xla"] for r in group])
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_ylabel("speed-up vs XLA")
        ax.set_title(f"{key[0]}, N={key[1]}")
        ax.tick_params(axis="x", labelrotation=20, labelsize=7)
    fig.suptitle(f"jax_fcm dw_pw on {device}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
