"""torchvision MobileNetV2 and ConvNeXt state dicts <-> flax_models.MobileNetV2
and ConvNeXt variables, and the .safetensors reader (CPU only; no torch needed)."""

from __future__ import annotations

import json
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flax_models as fm


def test_state_dict_layout_is_torchvision():
    variables = jax.eval_shape(lambda: fm.MobileNetV2().init(jax.random.key(0), jnp.zeros((1, 224, 224, 3))))
    variables = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), variables)
    state = fm.mobilenet_v2_to_torchvision(variables)
    # torchvision.models.mobilenet_v2(): 52 convs, 52 BatchNorms (5 entries each), one Linear.
    assert len(state) == 314
    expected = {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.1.conv.0.0.weight": (32, 1, 3, 3),   # depthwise, no expansion in the first block
        "features.1.conv.1.weight": (16, 32, 1, 1),
        "features.1.conv.2.running_var": (16,),
        "features.2.conv.0.0.weight": (96, 16, 1, 1),  # expansion
        "features.2.conv.1.0.weight": (96, 1, 3, 3),
        "features.2.conv.2.weight": (24, 96, 1, 1),
        "features.17.conv.2.weight": (320, 960, 1, 1),
        "features.18.0.weight": (1280, 320, 1, 1),
        "classifier.1.weight": (1000, 1280),
        "classifier.1.bias": (1000,),
    }
    for name, shape in expected.items():
        assert state[name].shape == shape, name


def test_round_trip_and_same_logits(rng):
    model = fm.MobileNetV2(num_classes=10, width_multiplier=0.5)
    x = jnp.asarray(rng.standard_normal((1, 32, 32, 3)), jnp.float32)
    variables = model.init(jax.random.key(0), x)
    state = {k: (v + rng.normal(0, 0.01, v.shape).astype(v.dtype) if v.dtype == np.float32 else v)
             for k, v in fm.mobilenet_v2_to_torchvision(variables).items()}
    state = {k: np.abs(v) + 0.5 if k.endswith("running_var") else v for k, v in state.items()}
    converted = fm.mobilenet_v2_from_torchvision(state)
    assert jax.tree.structure(converted) == jax.tree.structure(jax.tree.map(np.asarray, variables))
    again = fm.mobilenet_v2_to_torchvision(converted)
    assert all(np.array_equal(again[k], state[k]) for k in state)
    stock = fm.MobileNetV2(num_classes=10, width_multiplier=0.5, fusion="never")
    np.testing.assert_allclose(np.asarray(model.apply(converted, x)), np.asarray(stock.apply(converted, x)),
                               rtol=2e-4, atol=2e-4)


def test_unknown_or_missing_entries_are_errors():
    variables = fm.MobileNetV2(num_classes=10, width_multiplier=0.35).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    state = fm.mobilenet_v2_to_torchvision(variables)
    with pytest.raises(KeyError, match="no place in MobileNetV2"):
        fm.mobilenet_v2_from_torchvision({**state, "fc.weight": np.zeros((2, 2))})
    del state["features.3.conv.1.0.weight"]
    with pytest.raises(KeyError, match="features.3.conv.1.0.weight"):
        fm.mobilenet_v2_from_torchvision(state)


def test_convnext_state_dict_layout_is_torchvision():
    variables = jax.eval_shape(lambda: fm.ConvNeXt().init(jax.random.key(0), jnp.zeros((1, 224, 224, 3))))
    state = fm.convnext_to_torchvision(jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), variables))
    # torchvision.models.convnext_tiny(): 28,589,128 parameters (its weights' meta), 18 blocks of 9 entries +
    # stem (4), three downsamplings (4 each), classifier (4).
    assert sum(v.size for v in state.values()) == 28_589_128
    assert len(state) == 18 * 9 + 4 + 3 * 4 + 4
    expected = {
        "features.0.0.weight": (96, 3, 4, 4),
        "features.0.1.weight": (96,),
        "features.1.0.block.0.weight": (96, 1, 7, 7),   # depthwise
        "features.1.0.block.2.bias": (96,),             # LayerNorm
        "features.1.0.block.3.weight": (384, 96),       # Linear to 4C
        "features.1.2.block.5.weight": (96, 384),
        "features.1.2.layer_scale": (96, 1, 1),
        "features.2.0.weight": (96,),                   # downsampling LayerNorm2d, then the 2x2 conv
        "features.2.1.weight": (192, 96, 2, 2),
        "features.5.8.block.3.bias": (1536,),           # stage 3's ninth block
        "features.7.2.layer_scale": (768, 1, 1),
        "classifier.0.weight": (768,),
        "classifier.2.weight": (1000, 768),
    }
    for name, shape in expected.items():
        assert state[name].shape == shape, name


def test_convnext_round_trip_and_same_logits(rng):
    arch = dict(num_classes=10, depths=(1, 1, 2, 1), dims=(16, 24, 40, 48))
    x = jnp.asarray(rng.standard_normal((1, 64, 64, 3)), jnp.float32)
    variables = fm.ConvNeXt(**arch).init(jax.random.key(0), x)
    state = {k: v + rng.normal(0, 0.05, v.shape).astype(v.dtype)
             for k, v in fm.convnext_to_torchvision(variables, depths=arch["depths"]).items()}
    converted = fm.convnext_from_torchvision(state, depths=arch["depths"])
    assert jax.tree.structure(converted) == jax.tree.structure(jax.tree.map(np.asarray, variables))
    again = fm.convnext_to_torchvision(converted, depths=arch["depths"])
    assert all(np.array_equal(again[k], state[k]) for k in state)
    assert converted["params"]["stage2_block1"]["gamma"].shape == (40,)
    fused, stock = fm.ConvNeXt(**arch), fm.ConvNeXt(**arch, fusion="never")
    np.testing.assert_allclose(np.asarray(fused.apply(converted, x)), np.asarray(stock.apply(converted, x)),
                               rtol=2e-4, atol=2e-4)


def test_convnext_weights_into_the_nnx_model(rng):
    # torchvision layout -> Linen variables -> the NNX ConvNeXt (flax_models.nnx.load_linen_convnext): same logits.
    from flax import nnx

    from flax_models import nnx as fnnx

    arch = dict(num_classes=10, depths=(1, 1, 2, 1), dims=(16, 24, 40, 48))
    x = jnp.asarray(rng.standard_normal((1, 64, 64, 3)), jnp.float32)
    shapes = jax.eval_shape(lambda: fm.ConvNeXt(**arch).init(jax.random.key(0), x))
    state = fm.convnext_to_torchvision(jax.tree.map(lambda a: rng.normal(0, 0.1, a.shape).astype(np.float32), shapes),
                                       depths=arch["depths"])
    variables = fm.convnext_from_torchvision(state, depths=arch["depths"])
    model = fnnx.ConvNeXt(fusion="never", rngs=nnx.Rngs(0), **arch)
    fnnx.load_linen_convnext(model, variables)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(fm.ConvNeXt(**arch, fusion="never").apply(variables, x)),
                               rtol=1e-5, atol=1e-5)
    assert np.array_equal(np.asarray(model.stages[2][1].gamma[...]), variables["params"]["stage2_block1"]["gamma"])
    with pytest.raises(ValueError, match="the Linen parameter is"):
        fnnx.load_linen_convnext(fnnx.ConvNeXt(rngs=nnx.Rngs(0), **{**arch, "dims": (16, 24, 40, 56)}), variables)


def test_convnext_unknown_or_missing_entries_are_errors():
    arch = dict(num_classes=10, depths=(1, 1, 1, 1), dims=(8, 16, 24, 32))
    shapes = jax.eval_shape(lambda: fm.ConvNeXt(**arch).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
    state = fm.convnext_to_torchvision(jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), shapes), depths=(1, 1, 1, 1))
    with pytest.raises(KeyError, match="no place in ConvNeXt"):
        fm.convnext_from_torchvision({**state, "features.1.1.layer_scale": np.ones((8, 1, 1))}, depths=(1, 1, 1, 1))
    del state["features.3.0.block.2.weight"]
    with pytest.raises(KeyError, match="features.3.0.block.2.weight"):
        fm.convnext_from_torchvision(state, depths=arch["depths"])
    with pytest.raises(ValueError, match="variant must be one of"):
        fm.convnext_from_torchvision(state, variant="huge")


def write_safetensors(path, tensors):
    """Minimal writer per the format spec, to test the reader independently."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def test_read_safetensors(tmp_path, rng):
    a = rng.standard_normal((2, 3)).astype("<f4")
    b = np.arange(4, dtype="<i8")
    c = rng.standard_normal(5).astype("<f2")
    bf16 = np.array([1.0, -2.5, 3.140625], np.float32)
    bf16_raw = (bf16.view(np.uint32) >> 16).astype("<u2").tobytes()
    path = tmp_path / "w.safetensors"
    write_safetensors(path, {"a": ("F32", a.shape, a.tobytes()), "b": ("I64", b.shape, b.tobytes()),
                             "c": ("F16", c.shape, c.tobytes()), "d": ("BF16", (3,), bf16_raw)})
    got = fm.read_safetensors(path)
    assert set(got) == {"a", "b", "c", "d"}
    np.testing.assert_array_equal(got["a"], a)
    np.testing.assert_array_equal(got["b"], b)
    np.testing.assert_array_equal(got["c"], c)
    np.testing.assert_array_equal(got["d"], bf16)
