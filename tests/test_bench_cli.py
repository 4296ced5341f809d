"""The benchmark CLI runs end to end on the CPU (host wall-clock timing) and
writes its table and CSV: layers, the configuration sweep, and whole models."""

import csv

import pytest

from jax_fcm import bench


def test_layer_table_and_sweep(tmp_path, capsys):
    out_csv, sweep = tmp_path / "rows.csv", tmp_path / "sweep.csv"
    assert bench.main(["--layers", "mv2_7_960_160", "--batch", "1", "--dtype", "float32", "--iters", "2",
                       "--csv", str(out_csv), "--sweep", str(sweep)]) == 0
    assert "| float32 | 1 | mv2_7_960_160 |" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out_csv)))
    assert len(rows) == 1 and float(rows[0]["fused_us"]) > 0
    configs = list(csv.DictReader(open(sweep)))
    assert sum(r["chosen"] == "True" for r in configs) == 1 and len(configs) > 10


def test_model_table(tmp_path, capsys):
    out_csv = tmp_path / "models.csv"
    assert bench.main(["--models", "mobilenet_v1", "--batch", "1", "--image-size", "32", "--dtype", "float32",
                       "--iters", "2", "--csv", str(out_csv)]) == 0
    assert "| mobilenet_v1 | float32 | 1 |" in capsys.readouterr().out
    row = next(csv.DictReader(open(out_csv)))
    assert float(row["fused_ms"]) > 0 and float(row["stock_ms"]) > 0 and float(row["intercepted_ms"]) > 0


def test_validate_planner(tmp_path, capsys):
    report = tmp_path / "validation.md"
    assert bench.main(["--layers", "mv2_14_384_64", "--batch", "1", "--dtype", "bfloat16", "--iters", "1",
                       "--validate-planner", str(report)]) == 0
    text = report.read_text()
    assert "| bfloat16 | 1 | mv2_14_384_64 |" in text and "Planner pick within 5 %" in text


def test_training_table(tmp_path, capsys):
    out_csv = tmp_path / "train.csv"
    assert bench.main(["--train", "--layers", "mv2_56s2_144_32", "--batch", "1", "--dtype", "bfloat16",
                       "--iters", "2", "--csv", str(out_csv)]) == 0
    assert "| bfloat16 | 1 | mv2_56s2_144_32 |" in capsys.readouterr().out
    row = next(csv.DictReader(open(out_csv)))
    assert float(row["fused_train_us"]) > 0 and float(row["xla_train_us"]) > 0


def test_block_table(tmp_path, capsys):
    out_csv = tmp_path / "blocks.csv"
    assert bench.main(["--blocks", "mv2_28_32_64s2", "--batch", "1", "--dtype", "float32", "--iters", "2",
                       "--csv", str(out_csv)]) == 0
    assert "| float32 | 1 | mv2_28_32_64s2 |" in capsys.readouterr().out
    row = next(csv.DictReader(open(out_csv)))
    assert all(float(row[key]) > 0 for key in ("fused_us", "xla_us", "pair_us", "floor_us"))
    assert bench.main(["--blocks", "mv2_9_9_9"]) == 2  # unknown block names are an error


def test_depthwise_table(tmp_path, capsys):
    out_csv = tmp_path / "depthwise.csv"
    assert bench.main(["--depthwise", "mv2_14s2_576", "--batch", "1", "--dtype", "bfloat16", "--iters", "2",
                       "--csv", str(out_csv)]) == 0
    out = capsys.readouterr().out
    assert "| bfloat16 | 1 | mv2_14s2_576 |" in out and "slowest layer vs XLA" in out
    row = next(csv.DictReader(open(out_csv)))
    assert all(float(row[key]) > 0 for key in ("jax_fcm_us", "xla_us", "floor_us", "speedup_vs_xla"))
    assert bench.main(["--depthwise", "mv2_9_9"]) == 2  # unknown layer names are an error


@pytest.mark.parametrize("flag,layer,dtype,op_name", [
    ("--pointwise", "mv2_7_960_320", "float32", "jax_fcm.pointwise"),
    ("--pw-pw", "mv2_28_192_32_192", "bfloat16", "jax_fcm.pw_pw"),
    ("--conv2d", "mvit_local_7_160", "bfloat16", "jax_fcm.conv2d"),
])
def test_op_suite_table(tmp_path, capsys, flag, layer, dtype, op_name):
    out_csv = tmp_path / "suite.csv"
    assert bench.main([flag, layer, "--batch", "1", "--dtype", dtype, "--iters", "2", "--csv", str(out_csv)]) == 0
    out = capsys.readouterr().out
    assert f"| {op_name} |" in out and f"| {dtype} | 1 | {layer} |" in out
    row = next(csv.DictReader(open(out_csv)))
    assert all(float(row[key]) > 0 for key in ("jax_fcm_us", "xla_us", "floor_us", "speedup_vs_xla"))
    assert bench.main([flag, "mv2_9_9"]) == 2  # unknown layer names are an error


def test_int8_table(tmp_path, capsys):
    out_csv, sweep = tmp_path / "int8.csv", tmp_path / "sweep.csv"
    assert bench.main(["--int8", "mv2_7_960_160", "--batch", "1", "--iters", "1", "--csv", str(out_csv),
                       "--sweep", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "| 1 | mv2_7_960_160 |" in out and "vs bf16 fused" in out
    row = next(csv.DictReader(open(out_csv)))
    assert all(float(row[key]) > 0 for key in ("int8_us", "xla_int8_us", "bf16_fused_us", "speedup_vs_bf16"))
    configs = list(csv.DictReader(open(sweep)))
    assert sum(r["chosen"] == "True" for r in configs) == 1 and len(configs) > 10
    assert bench.main(["--int8", "convnext_56_96_384_k7"]) == 2  # GELU: not an int8 layer


def test_int8_pw_pw_table(tmp_path, capsys):
    out_csv = tmp_path / "int8_pw_pw.csv"
    assert bench.main(["--int8-pw-pw", "mv2_28_192_32_192", "convnext_56_96_384_96_relu", "--batch", "1",
                       "--iters", "1", "--csv", str(out_csv)]) == 0
    out = capsys.readouterr().out
    assert "| 1 | mv2_28_192_32_192 |" in out and "jax_fcm.pw_pw on bfloat16" in out
    rows = list(csv.DictReader(open(out_csv)))
    assert sorted(r["layer"] for r in rows) == ["convnext_56_96_384_96_relu", "mv2_28_192_32_192"]
    assert all(float(r[key]) > 0 for r in rows for key in ("int8_us", "xla_int8_us", "bf16_fused_us", "floor_us"))
    assert bench.main(["--int8-pw-pw", "convnext_56_96_384_96"]) == 2  # GELU: only its ReLU variant is int8


def test_int8_model_table(tmp_path, capsys):
    out_csv = tmp_path / "int8_model.csv"
    assert bench.main(["--int8-model", "--batch", "1", "--image-size", "32", "--iters", "1", "--csv",
                       str(out_csv)]) == 0
    assert "| mobilenet_v1 | 1 |" in capsys.readouterr().out
    row = next(csv.DictReader(open(out_csv)))
    assert all(float(row[key]) > 0 for key in ("int8_ms", "bf16_fused_ms", "bf16_stock_ms"))
