"""Weights from PyTorch: torchvision's MobileNetV2 and ConvNeXt state dicts ->
the Flax variables of flax_models.MobileNetV2 and flax_models.ConvNeXt
(either fusion setting: same tree).

A state dict is a mapping name -> array (numpy, or anything np.asarray takes).
From a ``.safetensors`` file: ``read_safetensors(path)`` (no torch needed).
From a ``.pth`` file: ``{k: v.numpy() for k, v in torch.load(path).items()}``.

Layouts: conv weights OIHW -> HWIO (depthwise (C, 1, k, k) -> (k, k, 1, C));
BatchNorm weight/bias -> params scale/bias, running_mean/var -> batch_stats
mean/var (num_batches_tracked is dropped); LayerNorm weight/bias -> scale/bias;
Linear (out, in) -> Dense (in, out); ConvNeXt's layer_scale (C, 1, 1) -> gamma (C,).
Other torchvision models map the same way: list their keys next to the Flax
tree (``jax.tree_util.tree_flatten_with_path``) and pair them by position.
"""

from __future__ import annotations

import json
import struct
from typing import Mapping

import numpy as np

from jax_fcm.model_layers import CONVNEXT_VARIANTS, MOBILENET_V2_STAGES

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


def convnext_module_map(depths) -> list[tuple[str, tuple[str, ...], str]]:
    """(torchvision prefix, Flax module path, kind) for every layer of
    torchvision's ConvNeXt (``features``: the patchify stem, then each stage's
    blocks and the downsampling between stages; ``classifier``) with these
    stage depths; kind is "conv", "norm" (a LayerNorm), "linear"
    or "layer_scale" (a block's gamma, prefix the block)."""
    pairs = [("features.0.0", ("stem_conv",), "conv"), ("features.0.1", ("stem_norm",), "norm")]
    for stage, depth in enumerate(depths):
        if stage > 0:
            down = f"features.{2 * stage}"
            pairs += [(f"{down}.0", (f"down{stage}_norm",), "norm"), (f"{down}.1", (f"down{stage}_conv",), "conv")]
        for i in range(depth):
            tv, fx = f"features.{2 * stage + 1}.{i}", (f"stage{stage}_block{i}",)
            pairs += [(f"{tv}.block.0", fx + ("dwconv",), "conv"), (f"{tv}.block.2", fx + ("norm",), "norm"),
                      (f"{tv}.block.3", fx + ("pwconv1",), "linear"), (f"{tv}.block.5", fx + ("pwconv2",), "linear"),
                      (tv, fx, "layer_scale")]
    return pairs + [("classifier.0", ("head_norm",), "norm"), ("classifier.2", ("head",), "linear")]


def _set(tree: dict, path: tuple[str, ...], leaf: str, value) -> None:
    for key in path:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def _subtree(tree, path: tuple[str, ...]):
    for key in path:
        tree = tree[key]
    return tree


def _get(tree, path: tuple[str, ...], leaf: str) -> np.ndarray:
    return np.asarray(_subtree(tree, path)[leaf], np.float32)


def _from_torchvision(state_dict: Mapping[str, np.ndarray], module_map, model: str) -> dict:
    """Flax variables from a torchvision state dict, layer by layer as
    module_map pairs them: conv weights OIHW -> HWIO, BatchNorm -> params
    scale/bias and batch_stats mean/var, LayerNorm weight -> scale, Linear
    transposed, a ConvNeXt layer scale (C, 1, 1) -> gamma (C,)."""
    params: dict = {}
    stats: dict = {}
    used = set()

    def take(name):
        if name not in state_dict:
            raise KeyError(f"state dict has no {name!r}: not a torchvision {model}?")
        used.add(name)
        return np.asarray(state_dict[name], np.float32)

    for prefix, path, kind in module_map:
        if kind == "conv":
            _set(params, path, "kernel", take(f"{prefix}.weight").transpose(2, 3, 1, 0))
            if f"{prefix}.bias" in state_dict:  # MobileNetV2's convs have none (a BatchNorm follows)
                _set(params, path, "bias", take(f"{prefix}.bias"))
        elif kind in ("bn", "norm"):
            _set(params, path, "scale", take(f"{prefix}.weight"))
            _set(params, path, "bias", take(f"{prefix}.bias"))
            if kind == "bn":
                _set(stats, path, "mean", take(f"{prefix}.running_mean"))
                _set(stats, path, "var", take(f"{prefix}.running_var"))
                used.add(f"{prefix}.num_batches_tracked")
        elif kind == "linear":
            _set(params, path, "kernel", take(f"{prefix}.weight").T)
            _set(params, path, "bias", take(f"{prefix}.bias"))
        else:  # layer_scale
            _set(params, path, "gamma", take(f"{prefix}.layer_scale").reshape(-1))
    unused = sorted(set(state_dict) - used)
    if unused:
        raise KeyError(f"state dict entries with no place in {model}: {unused[:5]}")
    return {"params": params, "batch_stats": stats} if stats else {"params": params}


def _to_torchvision(variables: Mapping, module_map) -> dict[str, np.ndarray]:
    """The inverse of _from_torchvision: a torchvision state dict (float32 numpy)."""
    out = {}
    params, stats = variables["params"], variables.get("batch_stats", {})
    for prefix, path, kind in module_map:
        if kind == "conv":
            out[f"{prefix}.weight"] = _get(params, path, "kernel").transpose(3, 2, 0, 1)
            if "bias" in _subtree(params, path):
                out[f"{prefix}.bias"] = _get(params, path, "bias")
        elif kind in ("bn", "norm"):
            out[f"{prefix}.weight"] = _get(params, path, "scale")
            out[f"{prefix}.bias"] = _get(params, path, "bias")
            if kind == "bn":
                out[f"{prefix}.running_mean"] = _get(stats, path, "mean")
                out[f"{prefix}.running_var"] = _get(stats, path, "var")
                out[f"{prefix}.num_batches_tracked"] = np.zeros((), np.int64)
        elif kind == "linear":
            out[f"{prefix}.weight"] = _get(params, path, "kernel").T
            out[f"{prefix}.bias"] = _get(params, path, "bias")
        else:  # layer_scale
            out[f"{prefix}.layer_scale"] = _get(params, path, "gamma").reshape(-1, 1, 1)
    return out


def mobilenet_v2_from_torchvision(state_dict: Mapping[str, np.ndarray]) -> dict:
    """Flax variables {"params", "batch_stats"} for flax_models.MobileNetV2 from
    a torchvision ``mobilenet_v2`` state dict (any width multiplier)."""
    return _from_torchvision(state_dict, mobilenet_v2_module_map(), "MobileNetV2")


def mobilenet_v2_to_torchvision(variables: Mapping) -> dict[str, np.ndarray]:
    """The inverse: a torchvision ``mobilenet_v2`` state dict (float32 numpy)."""
    return _to_torchvision(variables, mobilenet_v2_module_map())


def _convnext_depths(variant: str, depths) -> tuple[int, ...]:
    if variant not in CONVNEXT_VARIANTS:
        raise ValueError(f"variant must be one of {tuple(CONVNEXT_VARIANTS)}; got {variant!r}")
    return tuple(depths or CONVNEXT_VARIANTS[variant][0])


def convnext_from_torchvision(state_dict: Mapping[str, np.ndarray], variant: str = "tiny", depths=None) -> dict:
    """Flax variables {"params"} for flax_models.ConvNeXt (Linen; either
    fusion setting: same tree) from a torchvision ``convnext_tiny`` /
    ``convnext_small`` state dict (``depths`` as the model's, for other
    sizes; the widths come with the arrays)."""
    return _from_torchvision(state_dict, convnext_module_map(_convnext_depths(variant, depths)), "ConvNeXt")


def convnext_to_torchvision(variables: Mapping, variant: str = "tiny", depths=None) -> dict[str, np.ndarray]:
    """The inverse: a torchvision ConvNeXt state dict (float32 numpy)."""
    return _to_torchvision(variables, convnext_module_map(_convnext_depths(variant, depths)))
