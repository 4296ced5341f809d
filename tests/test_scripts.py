"""The device scripts' Python parts run on the CPU (the GPU checks themselves
need scripts/hardening_check.sh on a GPU machine)."""

import runpy
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def run_repeat_calls(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["repeat_calls.py", *args])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(SCRIPTS / "repeat_calls.py"), run_name="__main__")
    return done.value.code


def test_repeat_calls_digest_is_deterministic(monkeypatch, tmp_path, capsys):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    assert run_repeat_calls(monkeypatch, "--calls", "8", "--batch", "1", "--digest", str(first)) == 0
    assert run_repeat_calls(monkeypatch, "--calls", "4", "--batch", "1", "--digest", str(second)) == 0
    lines = first.read_text().splitlines()
    layers = sum(len(names) for _, _, names in repeat_calls_ops().values())
    assert len(lines) == layers and first.read_text() == second.read_text()
    assert {line.split(":")[0] for line in lines} == {"dw_pw", "depthwise", "pointwise", "pw_pw", "mbconv", "conv2d",
                                                      "convnext_block", "pw_dw"}
    assert "8 calls" in capsys.readouterr().out


def repeat_calls_ops():
    return runpy.run_path(str(SCRIPTS / "repeat_calls.py"))["OPS"]


def test_model_plans_times_each_plan(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["model_plans.py", "--model", "mobilevit_s", "--batch", "1", "--image-size", "64",
                                      "--iters", "1", "--plan", "never", "split", "auto"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(SCRIPTS / "model_plans.py"), run_name="__main__")
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "never" in out and "split" in out and "x the stock time" in out


def test_model_plans_convnext_mlp_ab_restores_the_planner(monkeypatch, capsys):
    from flax_models import convnext

    before = convnext.mlp_as_pw_pw
    monkeypatch.setattr(sys, "argv", ["model_plans.py", "--model", "convnext_tiny", "--batch", "1", "--image-size",
                                      "64", "--iters", "1", "--plan", "auto", "auto-no-pw-pw"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(SCRIPTS / "model_plans.py"), run_name="__main__")
    assert done.value.code == 0
    assert "auto-no-pw-pw" in capsys.readouterr().out
    assert convnext.mlp_as_pw_pw is before


def test_model_breakdown_needs_a_gpu(monkeypatch, capsys):
    import jax

    if jax.default_backend() == "gpu":
        pytest.skip("on a GPU machine the script runs for real (device runs)")
    monkeypatch.setattr(sys, "argv", ["model_breakdown.py", "--model", "mobilenet_v2", "--batch", "1"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(SCRIPTS / "model_breakdown.py"), run_name="__main__")
    assert done.value.code == 2
    assert "GPU machine" in capsys.readouterr().err
