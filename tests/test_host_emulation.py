"""Device code run on the host: the int8 depthwise stage's DP4A arithmetic
(cuda_src/dw_pw_depthwise_int8.cuh) compiled with the host C++ compiler over
emulated CUDA intrinsics (tests/host_emulation), so CPU-only CI checks its
bit tricks against plain int32 math. The GPU itself is checked by the gpu
tests and scripts/dw_pw_int8_check.cu."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EMULATION = Path(__file__).resolve().parent / "host_emulation"


def test_int8_depthwise_stage_matches_int32_math(tmp_path):
    compiler = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no host C++ compiler")
    # The headers are compiled from copies beside the stand-in element.cuh: a quoted include looks in the
    # including file's folder first, so cuda_src/element.cuh (CUDA headers, inline PTX) stays out.
    for header in ("dw_pw_depthwise_int8.cuh", "dw_pw_depthwise_unit.cuh"):
        shutil.copy(ROOT / "cuda_src" / header, tmp_path)
    shutil.copy(EMULATION / "element.cuh", tmp_path)
    binary = tmp_path / "dw_int8_stage"
    command = [compiler, "-std=c++17", "-O1", "-include", str(EMULATION / "cuda_intrinsics.h"), f"-I{tmp_path}",
               f"-I{ROOT / 'cuda_src'}", str(EMULATION / "dw_int8_stage.cc"), "-o", str(binary)]
    build = subprocess.run(command, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip().endswith("ALL OK"), run.stdout
    assert run.stdout.count(": 0 mismatches") == 36
