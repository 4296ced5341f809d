"""The examples run (small sizes) and report fused == stock logits."""

import runpy
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_mobilenet_v2_fused_example(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["mobilenet_v2_fused.py", "--batch", "1", "--size", "32"])
    runpy.run_path(str(EXAMPLES / "mobilenet_v2_fused.py"), run_name="__main__")
    out = capsys.readouterr().out
    diff = float(out.split("logit difference ")[1].split()[0])
    assert diff < 1e-4, out
    assert "stock" in out and "fused" in out
