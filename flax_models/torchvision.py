"""Weights from PyTorch: torchvision's MobileNetV2 state dict -> the Flax
variables of flax_models.MobileNetV2 (either fusion setting: same tree).

A state dict is a mapping name -> array (numpy, or anything np.asarray takes).
From a ``.safetensors`` file: ``read_safetensors(path)`` (no torch needed).
From a ``.pth`` file: ``{k: v.numpy() for k, v in torch.load(path).items()}``.

Layouts: conv weights OIHW -> HWIO (depthwise (C, 1, k, k) -> (k, k, 1, C));
BatchNorm weight/bias -> params scale/bias, running_mean/var -> batch_stats
mean/var (num_batches_tracked is dropped); Linear (out, in) -> Dense (in, out).
Other torchvision models map the same way: list their keys next to the Flax
tree (``jax.tree_util.tree_flatten_with_path``) and pair them by position.
"""

from __future__ import annotations

import json
import struct
from typing import Mapping

import numpy as np

from jax_fcm.model_layers import MOBILENET_V2_STAGES

_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
                       "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path) -> dict[str, np.ndarray]:
    """Arrays of a .safetensors file (8-byte little-endian header size, JSON
    header of name -> dtype/shape/data_offsets, then the raw little-endian data)."""
    with open(path, "rb") as f:
        (header_size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_size))
        data = f.read()
    arrays = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] == "BF16":  # numpy has no bfloat16: widen to float32
            begin, end = info["data_offsets"]
            raw = np.frombuffer(data[begin:end], "<u2").astype(np.uint32) << 16
            arrays[name] = raw.view(np.float32).reshape(info["shape"])
            continue
        if info["dtype"] not in _SAFETENSORS_DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        dtype = np.dtype(_SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<")
        arrays[name] = np.frombuffer(data[begin:end], dtype).reshape(info["shape"]).copy()
    return arrays


def mobilenet_v2_module_map() -> list[tuple[str, tuple[str, ...], str]]:
    """(torchvision prefix, Flax module path, kind) for every conv / BN / linear
    of MobileNetV2 (any width multiplier); kind is "conv", "bn" or "linear"."""
    pairs = [("features.0.0", ("stem", "conv"), "conv"), ("features.0.1", ("stem", "bn"), "bn")]
    index = 0
    for t, _, n, _ in MOBILENET_V2_STAGES:
        for _ in range(n):
            tv, fx = f"features.{index + 1}.conv", (f"block{index}",)
            if t == 1:  # no expansion: conv.0 = dw ConvBNReLU, conv.1 = pw conv, conv.2 = BN
                pairs += [(f"{tv}.0.0", fx + ("dw_pw", "dw_conv"), "conv"), (f"{tv}.0.1", fx + ("dw_pw", "dw_bn"), "bn"),
                          (f"{tv}.1", fx + ("dw_pw", "pw_conv"), "conv"), (f"{tv}.2", fx + ("dw_pw", "pw_bn"), "bn")]
            else:
                pairs += [(f"{tv}.0.0", fx + ("expand", "conv"), "conv"), (f"{tv}.0.1", fx + ("expand", "bn"), "bn"),
                          (f"{tv}.1.0", fx + ("dw_pw", "dw_conv"), "conv"), (f"{tv}.1.1", fx + ("dw_pw", "dw_bn"), "bn"),
                          (f"{tv}.2", fx + ("dw_pw", "pw_conv"), "conv"), (f"{tv}.3", fx + ("dw_pw", "pw_bn"), "bn")]
            index += 1
    pairs += [(f"features.{index + 1}.0", ("head", "conv"), "conv"), (f"features.{index + 1}.1", ("head", "bn"), "bn"),
              ("classifier.1", ("classifier",), "linear")]
    return pairs


def _set(tree: dict, path: tuple[str, ...], leaf: str, value) -> None:
    for key in path:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def mobilenet_v2_from_torchvision(state_dict: Mapping[str, np.ndarray]) -> dict:
    """Flax variables {"params", "batch_stats"} for flax_models.MobileNetV2 from
    a torchvision ``mobilenet_v2`` state dict (any width multiplier)."""
    params: dict = {}
    stats: dict = {}
    used = set()

    def take(name):
        if name not in state_dict:
            raise KeyError(f"state dict has no {name!r}: not a torchvision MobileNetV2?")
        used.add(name)
        return np.asarray(state_dict[name], np.float32)

    for prefix, path, kind in mobilenet_v2_module_map():
        if kind == "conv":
            _set(params, path, "kernel", take(f"{prefix}.weight").transpose(2, 3, 1, 0))
        elif kind == "bn":
            _set(params, path, "scale", take(f"{prefix}.weight"))
            _set(params, path, "bias", take(f"{prefix}.bias"))
            _set(stats, path, "mean", take(f"{prefix}.running_mean"))
            _set(stats, path, "var", take(f"{prefix}.running_var"))
            used.add(f"{prefix}.num_batches_tracked")
        else:
            _set(params, path, "kernel", take(f"{prefix}.weight").T)
            _set(params, path, "bias", take(f"{prefix}.bias"))
    unused = sorted(set(state_dict) - used)
    if unused:
        raise KeyError(f"state dict entries with no place in MobileNetV2: {unused[:5]}")
    return {"params": params, "batch_stats": stats}


def mobilenet_v2_to_torchvision(variables: Mapping) -> dict[str, np.ndarray]:
    """The inverse: a torchvision ``mobilenet_v2`` state dict (float32 numpy)."""
    out = {}

    def get(tree, path, leaf):
        for key in path:
            tree = tree[key]
        return np.asarray(tree[leaf], np.float32)

    params, stats = variables["params"], variables["batch_stats"]
    for prefix, path, kind in mobilenet_v2_module_map():
        if kind == "conv":
            out[f"{prefix}.weight"] = get(params, path, "kernel").transpose(3, 2, 0, 1)
        elif kind == "bn":
            out[f"{prefix}.weight"] = get(params, path, "scale")
            out[f"{prefix}.bias"] = get(params, path, "bias")
            out[f"{prefix}.running_mean"] = get(stats, path, "mean")
            out[f"{prefix}.running_var"] = get(stats, path, "var")
            out[f"{prefix}.num_batches_tracked"] = np.zeros((), np.int64)
        else:
            out[f"{prefix}.weight"] = get(params, path, "kernel").T
            out[f"{prefix}.bias"] = get(params, path, "bias")
    return out
