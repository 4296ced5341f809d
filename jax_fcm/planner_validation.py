"""Planner validation: measured time of every option of each layer (every
fused tile configuration, jax_fcm.depthwise + XLA's 1x1 conv, XLA's two
convolutions) against the planner's prediction and pick. On a GPU
`python -m jax_fcm.bench --validate-planner FILE` measures and reports; from
recorded measurements (no GPU) `python -m jax_fcm.planner_validation --sweep
SWEEP.csv --layers LAYERS.csv --gpu h100` reports (the CSVs of
`bench --sweep` and `bench --csv`); `--calibrate FUSED.csv UNFUSED.csv`
refits the time model's calibration (planner.FUSED_CALIBRATION,
UNFUSED_CALIBRATION) to recorded layer times."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import sys

import numpy as np

from jax_fcm import planner, tiling
from jax_fcm.gpu import PRESETS, GpuSpec


def pair_layer(layer, n: int, itemsize: int) -> planner.PairLayer:
    return planner.PairLayer(n, layer.hw, layer.hw, layer.c, layer.cout, layer.k, layer.stride, itemsize)


def predicted_fused_us(layer, n: int, itemsize: int, cfg: tiling.DwPwConfig, spec: GpuSpec) -> float:
    pl = pair_layer(layer, n, itemsize)
    return planner.predicted_us(planner.fused_traffic(pl, cfg), spec, True, itemsize, planner.FUSED_CALIBRATION)


def calibration_samples(rows: list[dict], column: str, fused: bool, layers, spec: GpuSpec) -> list[tuple]:
    """(memory µs, compute µs, launches, measured µs) per bench CSV row: the
    roofline terms of the fused kernel at its chosen configuration (fused) or
    of the unfused pair, and the row's measured `column`."""
    by_name = {layer.name: layer for layer in layers}
    samples = []
    for row in rows:
        itemsize = 4 if row["dtype"] == "float32" else 2
        plan = planner.plan_pair(pair_layer(by_name[row["layer"]], int(row["n"]), itemsize), spec)
        traffic = plan.fused if fused else plan.unfused
        samples.append((*planner.roofline_terms(traffic, spec, True, itemsize), traffic.launches, float(row[column])))
    return samples


def fit_calibration(samples) -> tuple[planner.Calibration, float]:
    """The Calibration minimising the squared log error of the predicted times
    over (memory µs, compute µs, launches, measured µs) samples (grid search:
    bandwidth fraction 0.10-1.00 step 0.02, compute fraction 0.005-1 on a
    log grid, launch 0-8 µs step 0.25), and its rms log error."""
    memory, compute, launches, measured = (np.array(column, dtype=float) for column in zip(*samples))
    launch_grid = np.linspace(0.0, 8.0, 33)[:, None]
    best = (math.inf, None)
    for bandwidth in np.linspace(0.1, 1.0, 46):
        for compute_fraction in np.geomspace(0.005, 1.0, 60):
            roof = np.maximum(memory / bandwidth, compute / compute_fraction)
            errors = np.log((roof + launches * launch_grid) / measured)
            sse = (errors**2).sum(axis=1)
            i = int(sse.argmin())
            if sse[i] < best[0]:
                best = (sse[i], planner.Calibration(round(float(bandwidth), 3), round(float(compute_fraction), 3),
                                                    float(launch_grid[i, 0])))
    return best[1], math.sqrt(best[0] / len(measured))


@dataclasses.dataclass
class Validation:
    """The planner's picks against measurements: one markdown row per layer,
    regrets (pick / measured best), fused picks measuring > 5 % slower than
    unfused, and (predicted, measured) µs of every fused configuration."""

    lines: list[str]
    regrets: list[float]
    wrong_fusions: int
    points: list[tuple[float, float]]

    @property
    def within_5_percent(self) -> int:
        return sum(r <= 1.05 for r in self.regrets)

    @property
    def geomean_regret(self) -> float:
        return math.exp(sum(map(math.log, self.regrets)) / len(self.regrets)) if self.regrets else float("nan")

    def markdown(self) -> str:
        return "\n".join(self.lines + [
            "", f"Planner pick within 5 % of the measured best on {self.within_5_percent}/{len(self.regrets)} layers; "
                f"geomean regret {self.geomean_regret:.2f}; fused picks measuring > 5 % slower than unfused: "
                f"{self.wrong_fusions}."])


def rank_correlation(a, b) -> float:
    """Spearman's rho (ties share their mean rank); nan for fewer than 2 values or no spread."""
    def ranks(xs):
        order = np.argsort(xs, kind="stable")
        r = np.empty(len(xs))
        r[order] = np.arange(len(xs), dtype=float)
        for value in set(xs):
            tied = [i for i, x in enumerate(xs) if x == value]
            r[tied] = r[tied].mean()
        return r

    if len(a) < 2:
        return float("nan")
    ra, rb = ranks(list(a)), ranks(list(b))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def validate(sweep_rows: list[dict], layer_rows: list[dict], layers, spec: GpuSpec, itemsizes: dict) -> Validation:
    """Per layer of layer_rows (measured split_us and xla_us) with sweep rows
    (measured us of every fused configuration): the planner's pick, its
    measured time, the measured best option, the regret, the traffic model's
    predicted / measured time of the pick, and how well the traffic model
    (planner.predicted_us) and the tile model that picks configurations
    (tiling.estimate_cycles) rank the fused configurations: Spearman's rho
    against their measured times."""
    by_name = {layer.name: layer for layer in layers}
    lines = ["| dtype | N | layer | planner pick | pick µs (measured) | best option | best µs | regret | "
             "predicted / measured (pick) | rank ρ traffic model | rank ρ tile model |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    v = Validation(lines, [], 0, [])
    for row in layer_rows:
        key = (row["layer"], row["n"], row["dtype"])
        configs = [r for r in sweep_rows if (r["layer"], r["n"], r["dtype"]) == key]
        if not configs:
            continue
        layer, itemsize = by_name[row["layer"]], itemsizes[row["dtype"]]
        plan = planner.plan_pair(pair_layer(layer, row["n"], itemsize), spec)
        options = {label(r): r["us"] for r in configs}
        predicted = [predicted_fused_us(layer, row["n"], itemsize, row_config(r), spec) for r in configs]
        v.points += zip(predicted, (r["us"] for r in configs))
        # The unfused option the layers take: jax_fcm.depthwise + XLA's 1x1 conv.
        unfused = "unfused (jax_fcm.depthwise + XLA 1x1)"
        options[unfused] = row["split_us"]
        options["XLA (both convolutions)"] = row["xla_us"]
        pick = tiling.config_label(plan.config) if plan.fuse else unfused
        picked_us = options[pick]
        best = min(options, key=options.get)
        regret = picked_us / options[best]
        v.regrets.append(regret)
        if plan.fuse and options[tiling.config_label(plan.config)] > 1.05 * row["split_us"]:
            v.wrong_fusions += 1
        ratio = (plan.fused_us if plan.fuse else plan.unfused_us) / picked_us
        measured = [r["us"] for r in configs]
        ho = -(-layer.hw // layer.stride)
        shape = dict(n=row["n"], ho=ho, wo=ho, c=layer.c, cout=layer.cout, k=layer.k, stride=layer.stride,
                     itemsize=itemsize, gpu=spec)
        tile_model = [tiling.estimate_cycles(row_config(r), **shape) for r in configs]
        lines.append(f"| {row['dtype']} | {row['n']} | {row['layer']} | {pick} | {picked_us:.1f} | {best} | "
                     f"{options[best]:.1f} | {regret:.2f} | {ratio:.2f} | {rank_correlation(predicted, measured):.2f} | "
                     f"{rank_correlation(tile_model, measured):.2f} |")
    return v


def summarize(sweep_rows: list[dict], layer_rows: list[dict], layers, spec: GpuSpec, itemsizes: dict) -> str:
    """validate(...) as markdown."""
    return validate(sweep_rows, layer_rows, layers, spec, itemsizes).markdown()


def scatter_plot(points, path: str, title: str) -> bool:
    """Predicted vs measured µs of every fused configuration, log-log, to a PNG
    (needs matplotlib; False without it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    predicted, measured = zip(*points)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.loglog(predicted, measured, ".", alpha=0.5)
    low, high = min(predicted + measured), max(predicted + measured)
    ax.plot([low, high], [low, high], "k-", lw=0.8)
    ax.set_xlabel("predicted µs (calibrated traffic model)")
    ax.set_ylabel("measured µs")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def row_config(row: dict) -> tiling.DwPwConfig:
    """The tile configuration of a sweep row (bench --sweep CSV or its dicts)."""
    return tiling.DwPwConfig(tile_h=int(row["tile_h"]), tile_n=int(row["tile_n"]),
                             cout_tiles_per_block=int(row["cout_tiles_per_block"]),
                             channel_splits=int(row["channel_splits"]),
                             tiles_per_block=int(row.get("tiles_per_block", 0)),
                             channel_chunk=int(row.get("channel_chunk") or tiling.CHANNEL_CHUNK))


def label(row: dict) -> str:
    """The configuration label of a sweep row."""
    return tiling.config_label(row_config(row))


def read_rows(path: str) -> list[dict]:
    """A bench CSV with N as int and the µs columns as floats."""
    rows = list(csv.DictReader(open(path)))
    for row in rows:
        row["n"] = int(row["n"])
        for key in ("us", "split_us", "xla_us"):
            if row.get(key):
                row[key] = float(row[key])
    return rows


def main(argv=None) -> int:
    from jax_fcm import bench  # the layer suite (bench imports this module)

    parser = argparse.ArgumentParser(prog="python -m jax_fcm.planner_validation",
                                     description="The planner against recorded measurements: its picks (--sweep with "
                                                 "--layers), or a refit of its time model (--calibrate).")
    parser.add_argument("--sweep", help="every fused configuration's time (bench --sweep CSV)")
    parser.add_argument("--layers", help="each layer's split_us and xla_us (bench --csv)")
    parser.add_argument("--calibrate", nargs=2, metavar=("FUSED_CSV", "UNFUSED_CSV"),
                        help="fit the fused kernel's calibration to fused_us of the first bench CSV and the unfused "
                             "path's to split_us of the second")
    parser.add_argument("--gpu", default="h100", choices=sorted(PRESETS), help="the GPU the times were measured on")
    parser.add_argument("--plot", help="predicted vs measured scatter plot (PNG; needs matplotlib)")
    args = parser.parse_args(argv)
    spec = PRESETS[args.gpu]
    if not (args.calibrate or (args.sweep and args.layers)):
        parser.error("give --sweep and --layers, or --calibrate")
    if args.calibrate:
        for path, column, fused in ((args.calibrate[0], "fused_us", True), (args.calibrate[1], "split_us", False)):
            samples = calibration_samples(list(csv.DictReader(open(path))), column, fused, bench.SUITE, spec)
            fit, rms = fit_calibration(samples)
            print(f"{'fused' if fused else 'unfused'} ({len(samples)} rows of {path}): {fit}, rms log error {rms:.3f}")
    if args.sweep and args.layers:
        v = validate(read_rows(args.sweep), read_rows(args.layers), bench.SUITE, spec,
                     {"float32": 4, "bfloat16": 2, "float16": 2})
        if not v.regrets:
            parser.error("no layer of --layers has rows in --sweep")
        print(v.markdown())
        if args.plot and not scatter_plot(v.points, args.plot, f"fused configurations on {spec.name}"):
            print("--plot needs matplotlib (pip install matplotlib)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
