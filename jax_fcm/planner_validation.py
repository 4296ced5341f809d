"""Planner validation (`python -m jax_fcm.bench --validate-planner FILE`):
measured time of every option of each layer (every fused tile configuration
and the unfused XLA pair) against the planner's prediction and pick."""

from __future__ import annotations

import math

from jax_fcm import planner, tiling
from jax_fcm.gpu import GpuSpec


def pair_layer(layer, n: int, itemsize: int) -> planner.PairLayer:
    return planner.PairLayer(n, layer.hw, layer.hw, layer.c, layer.cout, layer.k, layer.stride, itemsize)


def predicted_fused_us(layer, n: int, itemsize: int, cfg: tiling.DwPwConfig, spec: GpuSpec) -> float:
    pl = pair_layer(layer, n, itemsize)
    return planner.predicted_us(planner.fused_traffic(pl, cfg), spec, True, itemsize)


def summarize(sweep_rows: list[dict], layer_rows: list[dict], layers, spec: GpuSpec, itemsizes: dict) -> str:
    """Markdown: per layer the planner's pick, its measured time, the measured
    best option, the regret (pick / best) and whether the fuse decision held."""
    by_name = {layer.name: layer for layer in layers}
    lines = ["| dtype | N | layer | planner pick | pick µs (measured) | best option | best µs | regret | "
             "predicted / measured (pick) |", "|---|---|---|---|---|---|---|---|---|"]
    regrets, wrong_fusions = [], 0
    for row in layer_rows:
        key = (row["layer"], row["n"], row["dtype"])
        configs = [r for r in sweep_rows if (r["layer"], r["n"], r["dtype"]) == key]
        if not configs:
            continue
        layer, itemsize = by_name[row["layer"]], itemsizes[row["dtype"]]
        plan = planner.plan_pair(pair_layer(layer, row["n"], itemsize), spec)
        options = {label(r): r["us"] for r in configs}
        # The unfused option the layers take: jax_fcm.depthwise + XLA's 1x1 conv.
        unfused = "unfused (jax_fcm.depthwise + XLA 1x1)"
        options[unfused] = row["split_us"]
        options["XLA (both convolutions)"] = row["xla_us"]
        pick = tiling.config_label(plan.config) if plan.fuse else unfused
        picked_us = options[pick]
        best = min(options, key=options.get)
        regret = picked_us / options[best]
        regrets.append(regret)
        fused_measured = options[tiling.config_label(plan.config)]
        if plan.fuse and fused_measured > 1.05 * row["split_us"]:
            wrong_fusions += 1
        predicted = plan.fused_us if plan.fuse else plan.unfused_us
        lines.append(f"| {row['dtype']} | {row['n']} | {row['layer']} | {pick} | {picked_us:.1f} | {best} | "
                     f"{options[best]:.1f} | {regret:.2f} | {predicted / picked_us:.2f} |")
    within = sum(r <= 1.05 for r in regrets)
    geo = math.exp(sum(map(math.log, regrets)) / len(regrets)) if regrets else float("nan")
    lines += ["", f"Planner pick within 5 % of the measured best on {within}/{len(regrets)} layers; geomean regret "
                  f"{geo:.2f}; fused picks measuring > 5 % slower than unfused: {wrong_fusions}."]
    return "\n".join(lines)


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
