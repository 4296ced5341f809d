"""The examples run (small sizes) and report fused == stock logits."""

import runpy
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_mobilenet_v2_fused_example(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["mobilenet_v2_fused.py", "--batch", "1", "--size", "32", "--dtype", "float32",
                                      "--fusion", "always"])
    runpy.run_path(str(EXAMPLES / "mobilenet_v2_fused.py"), run_name="__main__")
    out = capsys.readouterr().out
    diff = float(out.split("logit difference ")[1].split()[0])
    assert diff < 1e-4, out
    assert "stock" in out and "fused" in out


def test_sharded_mobilenet_v2_example(monkeypatch, capsys):
    # Four host devices (conftest's XLA_FLAGS): the batch-sharded model's logits equal one device's.
    monkeypatch.setattr(sys, "argv", ["sharded_mobilenet_v2.py", "--batch", "8", "--size", "32", "--dtype", "float32",
                                      "--width-multiplier", "0.35"])
    runpy.run_path(str(EXAMPLES / "sharded_mobilenet_v2.py"), run_name="__main__")
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| 8 |"))
    assert "4 x cpu" in out and float(row.split("|")[-2]) < 1e-4


def test_existing_model_example(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["existing_model_jax_fcm_convs.py", "--batch", "2", "--size", "32", "--dtype",
                                      "float32"])
    runpy.run_path(str(EXAMPLES / "existing_model_jax_fcm_convs.py"), run_name="__main__")
    out = capsys.readouterr().out
    line = out.split("logit difference ")[1].split(")")[0]  # "<diff> (largest logit <scale>"
    diff, scale = float(line.split()[0]), float(line.split()[-1])
    assert diff <= 1e-5 * scale, out  # float32 on the CPU handlers: ~1e-6 relative
    assert "under jax_fcm_convs" in out


def test_convnext_torchvision_example(monkeypatch, capsys):
    # Random weights in torchvision's layout -> convnext_from_torchvision -> fused and stock ConvNeXt-tiny.
    monkeypatch.setattr(sys, "argv", ["convnext_torchvision.py", "--batch", "1", "--size", "32", "--dtype", "float32"])
    runpy.run_path(str(EXAMPLES / "convnext_torchvision.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "28,589,128 parameters" in out  # torchvision's convnext_tiny, every parameter placed
    line = out.split("logit difference ")[1].split(")")[0]  # "<diff> (logits up to <scale>"
    diff, scale = float(line.split()[0]), float(line.split()[-1])
    assert diff <= 1e-4 * max(scale, 1.0), out


def test_int8_mobilenet_v1_example(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["int8_mobilenet_v1.py", "--batch", "4", "--size", "32", "--calibration", "4",
                                      "--width-multiplier", "0.25"])
    runpy.run_path(str(EXAMPLES / "int8_mobilenet_v1.py"), run_name="__main__")
    out = capsys.readouterr().out
    cosine = float(out.split("cosine min ")[1].split(",")[0])
    assert cosine > 0.98, out
    assert "int8" in out
