"""Flax layers and models (flax_models): the same parameter trees as the stock
unfused definitions, the same outputs in inference mode (one fused kernel per
DW->PW pair, BatchNorm folded in), and training that is the stock model's."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_on

import flax_models as fm
from jax_fcm import model_layers, planner

# Fused vs stock, max-normalized as in conftest.assert_matches. The two differ by
# where BatchNorm's scale is applied (folded into the weights) and, for 16-bit
# and TF32 runs, by where rounding happens; errors add up over a model's depth.
LAYER_TOLERANCE = {("cpu", "float32"): 2e-5, ("gpu", "float32"): 5e-3, ("cpu", "bfloat16"): 3e-2,
                   ("gpu", "bfloat16"): 3e-2}
MODEL_TOLERANCE = {"cpu": 2e-4, "gpu": 3e-2}


def max_normalized_error(out, ref) -> float:
    out, ref = np.asarray(out, np.float32), np.asarray(ref, np.float32)
    assert out.shape == ref.shape and np.all(np.isfinite(out))
    return float(np.max(np.abs(out - ref))) / max(float(np.max(np.abs(ref))), 1.0)


def with_random_statistics(variables, rng):
    """Init leaves BatchNorm at mean 0, var 1, scale 1, bias 0, where folding is a
    no-op; draw them so the folded weights differ from the stock ones."""

    def draw(path, a):
        name = path[-1].key
        if name == "var":
            return jnp.asarray(rng.uniform(0.5, 2.0, a.shape), a.dtype)
        if name == "scale":
            return jnp.asarray(rng.uniform(0.5, 1.5, a.shape), a.dtype)
        if name in ("mean", "bias"):
            return jnp.asarray(rng.normal(0.0, 0.2, a.shape), a.dtype)
        return a

    return jax.tree_util.tree_map_with_path(draw, variables)


def tree_signature(tree):
    return jax.tree.map(lambda a: (a.shape, a.dtype), tree)


def images(rng, shape, dtype=jnp.float32):
    return jnp.asarray(rng.standard_normal(shape), dtype)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("kernel_size,strides,padding", [(3, 1, "SAME"), (3, 2, "SAME"), (5, 2, ((2, 2), (2, 2))),
                                                          (7, 1, "VALID")])
def test_separable_conv_matches_stock(platform, rng, dtype, kernel_size, strides, padding):
    x = images(rng, (2, 11, 13, 24))
    layer = dict(features=40, kernel_size=kernel_size, strides=strides, padding=padding, dw_activation="relu6",
                 pw_activation="silu")
    stock = fm.SeparableConv(**layer, fused=False)
    fused = fm.SeparableConv(**layer, fused=True, dtype=dtype)
    variables = with_random_statistics(stock.init(jax.random.key(0), x, use_running_average=False), rng)
    ref = run_on(platform, lambda v, x: stock.apply(v, x, use_running_average=True), variables, x)
    out = run_on(platform, lambda v, x: fused.apply(v, x, use_running_average=True), variables, x.astype(dtype))
    assert out.dtype == dtype
    err = max_normalized_error(out, ref)
    assert err <= LAYER_TOLERANCE[platform, jnp.dtype(dtype).name], err


@pytest.mark.parametrize("strides", [1, 2])
def test_auto_runs_the_depthwise_kernel_where_fusing_does_not_pay(platform, rng, strides):
    # 12 x 12 outputs per image (< 28 x 28): the planner does not fuse; "auto"
    # then runs jax_fcm.depthwise and XLA's 1x1 conv.
    x = images(rng, (2, 12 * strides, 12 * strides, 40))
    layer = dict(features=40, strides=strides, dw_activation="relu6", pw_activation="silu")
    stock, auto = fm.SeparableConv(**layer, fused=False), fm.SeparableConv(**layer, fused="auto")
    variables = with_random_statistics(stock.init(jax.random.key(0), x, use_running_average=False), rng)
    infer = lambda model: lambda v, x: model.apply(v, x, use_running_average=True)  # noqa: E731
    hlo = jax.jit(infer(auto)).lower(variables, x).as_text()
    assert "jax_fcm_depthwise" in hlo and "jax_fcm_dw_pw" not in hlo
    err = max_normalized_error(run_on(platform, infer(auto), variables, x), run_on(platform, infer(stock), variables, x))
    assert err <= LAYER_TOLERANCE[platform, "float32"], err


def test_fused_layer_lowers_to_the_kernel():
    x = jnp.zeros((1, 8, 8, 16))
    layer = fm.SeparableConv(32, fused=True)
    variables = layer.init(jax.random.key(0), x, use_running_average=False)
    hlo = jax.jit(lambda v, x: layer.apply(v, x, use_running_average=True)).lower(variables, x).as_text()
    assert "jax_fcm_dw_pw" in hlo
    train_hlo = jax.jit(lambda v, x: layer.apply(v, x, use_running_average=False, mutable=["batch_stats"])).lower(
        variables, x).as_text()
    assert "jax_fcm_dw_pw" not in train_hlo  # batch statistics need the unfused intermediate


def fused_kernels(model, x) -> dict[str, int]:
    """How many calls of each fused kernel a model lowers to in inference."""
    variables = model.init(jax.random.key(0), x)
    text = jax.jit(lambda v, x: model.apply(v, x)).lower(variables, x).as_text()
    return {target: text.count(target) for target in ("jax_fcm_dw_pw", "jax_fcm_mbconv")}


def depthwise_kernels(model, x) -> int:
    """How many jax_fcm.depthwise calls a model lowers to in inference."""
    variables = model.init(jax.random.key(0), x)
    return jax.jit(lambda v, x: model.apply(v, x)).lower(variables, x).as_text().count("jax_fcm_depthwise")


def fused_pairs(model, x) -> int:
    """How many DW->PW pairs of a model lower to a fused kernel in inference:
    the pair kernel, or the whole-block kernel that contains the pair."""
    return sum(fused_kernels(model, x).values())


def test_whole_blocks_fuse_where_the_planner_says_it_pays():
    # MobileNetV2 on 8 x 224 x 224 images: 16 of 17 blocks have an expansion;
    # their outputs: 56^2 x 2, 28^2 x 3, 14^2 x 7, 7^2 x 4. "auto" runs whole
    # blocks at >= 28 x 28 outputs, and 16-bit 3x3 ones down to 14 x 14
    # (planner.should_fuse_block); "always" every block with an expansion.
    x = jnp.zeros((8, 224, 224, 3), jnp.bfloat16)
    model = functools.partial(fm.MobileNetV2, num_classes=10)
    assert fused_kernels(model(fusion="always", dtype=jnp.bfloat16), x) == {"jax_fcm_dw_pw": 1, "jax_fcm_mbconv": 16}
    assert fused_kernels(model(fusion="auto", dtype=jnp.bfloat16), x)["jax_fcm_mbconv"] == 12
    assert fused_kernels(model(fusion="auto"), x.astype(jnp.float32))["jax_fcm_mbconv"] == 5
    assert fused_kernels(model(fusion="never"), x.astype(jnp.float32)) == {"jax_fcm_dw_pw": 0, "jax_fcm_mbconv": 0}


def test_auto_fuses_where_the_planner_says_it_pays():
    # MobileNetV1 on 8 x 128 x 128 images, output maps per pair: 64^2, 32^2
    # (stride 2), 32^2, then 16^2 and smaller. Measured faster fused
    # (planner.fused_measured_faster): outputs of at least 28 x 28, in float32
    # not a stride-2 pair on more than 8 images of 28 x 28; the others run
    # jax_fcm.depthwise + XLA's 1x1 conv.
    x = jnp.zeros((8, 128, 128, 3), jnp.bfloat16)
    auto = fm.MobileNetV1(num_classes=10, fusion="auto", dtype=jnp.bfloat16)
    always = fm.MobileNetV1(num_classes=10, fusion="always", dtype=jnp.bfloat16)
    assert (fused_pairs(auto, x), fused_pairs(always, x)) == (3, 13)
    assert depthwise_kernels(auto, x) == 10 and depthwise_kernels(always, x) == 0
    assert fused_pairs(fm.MobileNetV1(num_classes=10, fusion="auto"), x.astype(jnp.float32)) == 2
    with pytest.raises(ValueError, match="fusion must be one of"):
        fm.MobileNetV1(fusion="sometimes").init(jax.random.key(0), x)


def test_fusion_plan_from_the_planner_cli(capsys):
    # The plan CLI prints one boolean per pair; a model takes it as its fusion.
    from jax_fcm import plan

    assert plan.main(["--gpu", "h100", "--model", "mobilenet_v1", "--batch", "8", "--dtype", "float32"]) == 0
    printed = capsys.readouterr().out.split("fusion=")[-1].strip()
    chosen = tuple(word.strip(" ()") == "True" for word in printed.split(","))
    # float32 at N = 8 (outputs 112^2, 56^2 s2, 56^2, 28^2 s2, 28^2, then 14^2
    # and smaller): from 28 x 28 up, not the stride-2 pair on 8 x 56 x 56.
    assert chosen == (True, False, True, True, True) + (False,) * 8
    x = jnp.zeros((1, 64, 64, 3), jnp.bfloat16)
    mine = (True,) + (False,) * 11 + (True,)
    assert fused_pairs(fm.MobileNetV1(num_classes=10, fusion=mine, dtype=jnp.bfloat16), x) == 2
    assert fused_pairs(fm.MobileNetV1(num_classes=10, fusion=list(mine), dtype=jnp.bfloat16), x) == 2  # Linen: tuple
    split = fm.MobileNetV1(num_classes=10, fusion=("split",) * 13, dtype=jnp.bfloat16)
    assert (fused_pairs(split, x), depthwise_kernels(split, x)) == (0, 13)
    for bad in ((True,) * 12, (1,) * 13):
        with pytest.raises(ValueError, match="fusion"):
            fm.MobileNetV1(num_classes=10, fusion=bad).init(jax.random.key(0), x)


def test_mobilevit_variants():
    # Parameter counts of the paper (1.3 M, 2.3 M, 5.6 M at 1000 classes); every
    # MobileNetV2 block's depthwise -> pointwise pair fused with "always"; a
    # 7x7 map (224 input) is resized for the 2x2 patches and back.
    counts = {v: sum(a.size for a in jax.tree.leaves(jax.eval_shape(
        fm.MobileViT(v).init, jax.random.key(0), jnp.zeros((1, 224, 224, 3)))["params"])) for v in ("xxs", "xs", "s")}
    assert [round(counts[v] / 1e6, 1) for v in ("xxs", "xs", "s")] == [1.3, 2.3, 5.6]
    x = jnp.zeros((1, 224, 224, 3), jnp.bfloat16)
    assert fused_pairs(fm.MobileViT("xxs", num_classes=10, fusion="always", dtype=jnp.bfloat16), x) == 7
    with pytest.raises(ValueError, match="variant must be one of"):
        fm.MobileViT("m").init(jax.random.key(0), x)


def test_separable_conv_auto_asks_the_planner():
    layer = fm.SeparableConv(64, fused="auto", dtype=jnp.bfloat16)
    for hw, expected in ((28, True), (16, False)):  # fused from 28 x 28 outputs per image
        x = jnp.zeros((2, hw, hw, 96), jnp.bfloat16)
        variables = layer.init(jax.random.key(0), x, use_running_average=False)
        hlo = jax.jit(lambda v, x: layer.apply(v, x, use_running_average=True)).lower(variables, x).as_text()
        assert ("jax_fcm_dw_pw" in hlo) == expected, hw
        assert ("jax_fcm_depthwise" in hlo) != expected, hw  # unfused: the depthwise kernel, XLA's 1x1 conv
    with pytest.raises(ValueError, match="fused must be True, False, 'block', 'split' or 'auto'"):
        fm.SeparableConv(64, fused="yes").apply(variables, x, use_running_average=True)


MODELS = [
    pytest.param(lambda fusion: fm.MobileNetV1(num_classes=10, width_multiplier=0.25, fusion=fusion), id="mobilenet_v1"),
    pytest.param(lambda fusion: fm.MobileNetV2(num_classes=10, width_multiplier=0.35, fusion=fusion), id="mobilenet_v2"),
    pytest.param(lambda fusion: fm.EfficientNetLite0(num_classes=10, fusion=fusion), id="efficientnet_lite0"),
    pytest.param(lambda fusion: fm.EfficientNetB0(num_classes=10, fusion=fusion), id="efficientnet_b0"),
    pytest.param(lambda fusion: fm.MobileViT("xxs", num_classes=10, fusion=fusion), id="mobilevit_xxs"),
]


def model_maker(model_id: str):
    """The maker of MODELS with this id."""
    return next(param.values[0] for param in MODELS if param.id == model_id)


@pytest.mark.parametrize("make", MODELS)
def test_parameter_trees_equal_stock(make):
    x = jnp.zeros((1, 32, 32, 3))
    stock = make("never").init(jax.random.key(0), x)
    fused = make("always").init(jax.random.key(0), x)
    assert tree_signature(fused) == tree_signature(stock)
    assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), fused, stock)))


@pytest.mark.parametrize("make", MODELS)
def test_inference_logits_match_stock(platform, rng, make):
    x = images(rng, (2, 32, 32, 3))
    stock, fused = make("never"), make("always")
    variables = with_random_statistics(stock.init(jax.random.key(0), x), rng)
    ref = run_on(platform, lambda v, x: stock.apply(v, x), variables, x)
    out = run_on(platform, lambda v, x: fused.apply(v, x), variables, x)
    err = max_normalized_error(out, ref)
    assert err <= MODEL_TOLERANCE[platform], err


@pytest.mark.parametrize("make", MODELS)
def test_training_step_is_the_stock_one(rng, make):
    x, labels = images(rng, (2, 32, 32, 3)), jnp.asarray([1, 7])
    stock, fused = make("never"), make("always")
    variables = stock.init(jax.random.key(0), x)

    def step(model):
        def loss(params):
            logits, updates = model.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"],
                                          rngs={"dropout": jax.random.key(1)})
            return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(2), labels]), updates

        return jax.jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])

    (loss_s, stats_s), grads_s = step(stock)
    (loss_f, stats_f), grads_f = step(fused)
    assert np.isfinite(float(loss_s)) and float(loss_f) == float(loss_s)
    for a, b in zip(jax.tree.leaves((grads_f, stats_f)), jax.tree.leaves((grads_s, stats_s))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_mobilenet_v2_torchvision_widths():
    # torchvision's mobilenet_v2(width_mult=1.0): 3.5 M parameters, 1280 features into the classifier.
    variables = jax.eval_shape(lambda: fm.MobileNetV2(num_classes=1000).init(jax.random.key(0),
                                                                               jnp.zeros((1, 224, 224, 3))))
    params = sum(np.prod(a.shape) for a in jax.tree.leaves(variables["params"]))
    assert params == 3_504_872
    assert variables["params"]["classifier"]["kernel"].shape == (1280, 1000)
    assert fm.mobilenet.make_divisible(32 * 0.35) == 16 and fm.mobilenet.make_divisible(24 * 0.35) == 8


def test_efficientnet_lite0_size():
    # Published size of efficientnet-lite0 with a 1000-class head: 4.65 M parameters.
    variables = jax.eval_shape(lambda: fm.EfficientNetLite0().init(jax.random.key(0), jnp.zeros((1, 224, 224, 3))))
    params = sum(np.prod(a.shape) for a in jax.tree.leaves(variables["params"]))
    assert round(params / 1e4) == 465


def test_efficientnet_b0_size():
    # torchvision's efficientnet_b0: 5,288,548 parameters, 1280 features into the classifier.
    variables = jax.eval_shape(lambda: fm.EfficientNetB0().init(jax.random.key(0), jnp.zeros((1, 224, 224, 3))))
    params = sum(np.prod(a.shape) for a in jax.tree.leaves(variables["params"]))
    assert params == 5_288_548
    assert variables["params"]["block1"]["se"]["reduce"]["kernel"].shape == (1, 1, 96, 4)  # 16 input channels / 4


def test_efficientnet_b0_auto_runs_pw_dw_where_the_planner_fuses():
    model = fm.EfficientNetB0(num_classes=10, dtype=jnp.bfloat16)
    x = jnp.zeros((8, 224, 224, 3), jnp.bfloat16)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x[:1]))
    hlo = jax.jit(lambda v, x: model.apply(v, x)).lower(variables, x).as_text()
    # 3x3 blocks with light expansions fuse; the 5x5 ones run XLA's 1x1 conv + jax_fcm.depthwise.
    assert "jax_fcm_pw_dw" in hlo and "jax_fcm_depthwise" in hlo
    with pytest.raises(ValueError, match="fusion must be one of"):
        fm.EfficientNetB0(fusion="sometimes").init(jax.random.key(0), x[:1])


@pytest.mark.parametrize("expand", [True, False])
def test_expand_depthwise_matches_stock(platform, rng, expand):
    x = images(rng, (2, 9, 11, 16))
    stock = fm.ExpandDepthwise(48 if expand else 16, 3, 2, expand=expand, fused=False)
    fused = fm.ExpandDepthwise(48 if expand else 16, 3, 2, expand=expand, fused=True)
    variables = with_random_statistics(stock.init(jax.random.key(0), x, use_running_average=False), rng)
    ref = run_on(platform, lambda v, x: stock.apply(v, x, use_running_average=True), variables, x)
    out = run_on(platform, lambda v, x: fused.apply(v, x, use_running_average=True), variables, x)
    assert max_normalized_error(out, ref) <= LAYER_TOLERANCE[platform, "float32"]
    hlo = jax.jit(lambda v, x: fused.apply(v, x, use_running_average=True)).lower(variables, x).as_text()
    assert ("jax_fcm_pw_dw" in hlo) == expand and ("jax_fcm_depthwise" in hlo) != expand
    with pytest.raises(ValueError, match="expand=False needs features"):
        fm.ExpandDepthwise(32, expand=False).init(jax.random.key(0), x, use_running_average=False)


def test_expand_depthwise_always_falls_back_where_the_kernel_refuses(monkeypatch, rng):
    # On a GPU, float32 blocks with wide inputs outgrow the kernel's shared
    # memory (pw_dw_op.kernel_refusal); fused=True then runs the split path.
    from jax_fcm import pw_dw_op

    x = images(rng, (1, 8, 8, 16))
    layer = fm.ExpandDepthwise(32, fused=True)
    variables = layer.init(jax.random.key(0), x, use_running_average=False)
    monkeypatch.setattr(pw_dw_op, "kernel_refusal", lambda *a: "too big")
    hlo = jax.jit(lambda v, x: layer.apply(v, x, use_running_average=True)).lower(variables, x).as_text()
    assert "jax_fcm_pw_dw" not in hlo and "jax_fcm_depthwise" in hlo


def test_bad_fusion_is_a_clear_error():
    with pytest.raises(ValueError, match="fusion must be one of"):
        fm.MobileNetV2(fusion="sometimes").init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))


def nnx_pair(seed=0, **layer):
    from flax import nnx

    from flax_models import nnx as fnnx

    make = lambda fused: fnnx.SeparableConv(24, 40, fused=fused, rngs=nnx.Rngs(seed), **layer)  # noqa: E731
    return make(False), make(True)


FUSED_TARGETS = ("jax_fcm_dw_pw", "jax_fcm_mbconv", "jax_fcm_depthwise", "jax_fcm_pw_dw")


def nnx_eval_error(platform, rng, stock, fused, bns, x) -> float:
    """Random statistics in the stock module's BatchNorms `bns`, copied to the
    fused one; both in eval mode, jitted on the platform; the fused output's
    max-normalized error against the stock one."""
    from flax import nnx

    assert tree_signature(nnx.state(stock)) == tree_signature(nnx.state(fused))
    for bn in bns:
        bn.mean[...] = jnp.asarray(rng.normal(0, 0.2, bn.mean.shape), jnp.float32)
        bn.var[...] = jnp.asarray(rng.uniform(0.5, 2.0, bn.var.shape), jnp.float32)
        bn.scale[...] = jnp.asarray(rng.uniform(0.5, 1.5, bn.scale.shape), jnp.float32)
    nnx.update(fused, nnx.state(stock))
    stock.eval()
    fused.eval()
    graph, state = nnx.split(fused)
    text = jax.jit(lambda s, x: nnx.merge(graph, s)(x)).lower(state, x).as_text()
    assert any(target in text for target in FUSED_TARGETS)
    out = run_on(platform, lambda s, x: nnx.merge(graph, s)(x), state, x)
    ref = run_on(platform, lambda s, x: nnx.merge(*nnx.split(stock)[:1], s)(x), nnx.state(stock), x)
    return max_normalized_error(out, ref)


@pytest.mark.parametrize("strides,padding", [(1, "SAME"), (2, ((1, 1), (1, 1)))])
def test_nnx_separable_conv_matches_stock(platform, rng, strides, padding):
    stock, fused = nnx_pair(strides=strides, padding=padding, dw_activation="relu6", pw_activation="silu")
    err = nnx_eval_error(platform, rng, stock, fused, (stock.dw_bn, stock.pw_bn), images(rng, (2, 11, 13, 24)))
    assert err <= LAYER_TOLERANCE[platform, "float32"], err


def test_nnx_auto_runs_the_depthwise_kernel_where_fusing_does_not_pay(platform, rng):
    from flax import nnx

    from flax_models import nnx as fnnx

    make = lambda fused: fnnx.SeparableConv(40, 40, fused=fused, rngs=nnx.Rngs(0))  # noqa: E731
    stock, auto = make(False), make("auto")  # 12 x 12 outputs: not fused (as above)
    err = nnx_eval_error(platform, rng, stock, auto, (stock.dw_bn, stock.pw_bn), images(rng, (2, 12, 12, 40)))
    assert err <= LAYER_TOLERANCE[platform, "float32"], err


def test_nnx_training_mode_is_the_stock_layer(rng):
    stock, fused = nnx_pair()
    x = images(rng, (2, 8, 8, 24))
    np.testing.assert_array_equal(np.asarray(fused(x)), np.asarray(stock(x)))  # train mode: batch statistics
    np.testing.assert_array_equal(np.asarray(fused.dw_bn.mean[...]), np.asarray(stock.dw_bn.mean[...]))


@pytest.mark.parametrize("setting", [True, "block"])  # the pair fused, or the whole block (with an expansion)
@pytest.mark.parametrize("expand_ratio,strides", [(6, 1), (1, 1), (6, 2)])
def test_nnx_inverted_residual_matches_stock(platform, rng, expand_ratio, strides, setting):
    from flax import nnx

    from flax_models import nnx as fnnx

    def make(fused):
        return fnnx.InvertedResidual(16, 16, expand_ratio, strides, fused=fused, rngs=nnx.Rngs(3))

    stock, fused = make(False), make(setting)
    assert (stock.expand is None) == (expand_ratio == 1) and stock.residual == (strides == 1)
    # With an expansion the whole block is one jax_fcm.mbconv kernel.
    bns = (stock.dw_pw.dw_bn, stock.dw_pw.pw_bn) + ((stock.expand.bn,) if stock.expand is not None else ())
    err = nnx_eval_error(platform, rng, stock, fused, bns, images(rng, (2, 9, 11, 16)))
    assert err <= LAYER_TOLERANCE[platform, "float32"], err


NNX_MODELS = [  # (maker, depthwise -> pointwise pairs, the Linen model with the same parameters)
    pytest.param("MobileNetV1", dict(width_multiplier=0.25), 13, id="mobilenet_v1"),
    pytest.param("MobileNetV2", dict(width_multiplier=0.35), 17, id="mobilenet_v2"),
    pytest.param("EfficientNetLite0", {}, 16, id="efficientnet_lite0"),
    pytest.param("EfficientNetB0", {}, 16, id="efficientnet_b0"),  # 15 pw_dw kernels, block0's depthwise
    pytest.param("MobileViT", dict(variant="xxs"), 7, id="mobilevit_xxs"),  # its MobileNetV2 blocks' pairs
]


def randomize_batch_norms(model, rng):
    """Random running statistics, scales and biases in every BatchNorm (init's
    are a no-op for folding)."""
    from flax import nnx

    for _, module in nnx.iter_graph(model):
        if isinstance(module, nnx.BatchNorm):
            for name, low, high in (("mean", -0.2, 0.2), ("var", 0.5, 2.0), ("scale", 0.5, 1.5), ("bias", -0.2, 0.2)):
                variable = getattr(module, name)
                variable[...] = jnp.asarray(rng.uniform(low, high, variable.shape), jnp.float32)


@pytest.mark.parametrize("name,options,pairs", NNX_MODELS)
def test_nnx_models_match_stock_and_linen(platform, rng, name, options, pairs):
    from flax import nnx

    from flax_models import nnx as fnnx

    make = lambda fusion: getattr(fnnx, name)(num_classes=10, fusion=fusion, rngs=nnx.Rngs(0), **options)  # noqa: E731
    stock, fused = make("never"), make("always")
    # The Linen model's parameter count at the same settings.
    x = images(rng, (2, 32, 32, 3))
    linen = jax.eval_shape(lambda: getattr(fm, name)(num_classes=10, **options).init(jax.random.key(0), x))
    count = lambda tree: sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))  # noqa: E731
    assert count(nnx.state(stock, nnx.Param)) == count(linen["params"])
    assert tree_signature(nnx.state(stock)) == tree_signature(nnx.state(fused))

    randomize_batch_norms(stock, rng)
    nnx.update(fused, nnx.state(stock))
    stock.eval()
    fused.eval()
    graph, state = nnx.split(fused)
    text = jax.jit(lambda s, x: nnx.merge(graph, s)(x)).lower(state, x).as_text()
    assert sum(text.count(target) for target in FUSED_TARGETS) == pairs  # a pair kernel or a whole block each
    out = run_on(platform, lambda s, x: nnx.merge(graph, s)(x), state, x)
    ref = run_on(platform, lambda s, x: nnx.merge(*nnx.split(stock)[:1], s)(x), nnx.state(stock), x)
    err = max_normalized_error(out, ref)
    assert out.shape == (2, 10) and err <= MODEL_TOLERANCE[platform], err

    fused.train()  # batch statistics: the stock network
    graph, state = nnx.split(fused)
    text = jax.jit(lambda s, x: nnx.merge(graph, s)(x)).lower(state, x).as_text()
    assert not any(target in text for target in FUSED_TARGETS)


@pytest.mark.parametrize("dtype,fusion,mlp_target,mlps", [
    pytest.param(jnp.float32, "auto", "jax_fcm_pointwise", 5, id="float32-auto"),  # the expansions (test above)
    # 16-bit: every block (C <= 192) as one jax_fcm.convnext_block (depthwise + the fused rest)
    pytest.param(jnp.bfloat16, "auto", "jax_fcm_convnext_mlp", 5, id="bfloat16-auto"),
    pytest.param(jnp.bfloat16, "always", "jax_fcm_convnext_mlp", 5, id="bfloat16-always"),
])
def test_nnx_convnext_matches_stock_and_linen(platform, rng, dtype, fusion, mlp_target, mlps):
    from flax import nnx

    from flax_models import nnx as fnnx

    arch = dict(num_classes=10, depths=(1, 1, 2, 1), dims=(16, 24, 40, 48), dtype=dtype)
    stock, fused = fnnx.ConvNeXt(fusion="never", rngs=nnx.Rngs(0), **arch), fnnx.ConvNeXt(fusion=fusion,
                                                                                          rngs=nnx.Rngs(0), **arch)
    x = images(rng, (2, 64, 64, 3)).astype(dtype)
    linen = jax.eval_shape(lambda: fm.ConvNeXt(**arch).init(jax.random.key(0), x))
    count = lambda tree: sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))  # noqa: E731
    assert count(nnx.state(stock, nnx.Param)) == count(linen["params"])
    assert tree_signature(nnx.state(stock)) == tree_signature(nnx.state(fused))
    state = jax.tree.map(lambda a: a + 0.05 * jnp.asarray(rng.standard_normal(a.shape), a.dtype), nnx.state(stock))
    nnx.update(stock, state)
    nnx.update(fused, state)
    graph, state = nnx.split(fused)
    text = jax.jit(lambda s, x: nnx.merge(graph, s)(x)).lower(state, x).as_text()
    assert text.count("jax_fcm_depthwise") == 5 and text.count(mlp_target) == mlps
    assert text.count("jax_fcm_conv2d") == 1  # the patchify stem
    out = run_on(platform, lambda s, x: nnx.merge(graph, s)(x), state, x)
    ref = run_on(platform, lambda s, x: nnx.merge(*nnx.split(stock)[:1], s)(x), nnx.state(stock), x)
    tolerance = MODEL_TOLERANCE[platform] if dtype == jnp.float32 else LAYER_TOLERANCE[platform, "bfloat16"]
    assert out.shape == (2, 10) and max_normalized_error(out, ref) <= tolerance
    if dtype == jnp.float32:  # gradients through the kernels' own backward
        loss = lambda s, x: jnp.sum(nnx.merge(graph, s)(x) ** 2)  # noqa: E731
        grads = run_on(platform, jax.grad(loss), state, x)
        ref_grads = run_on(platform, jax.grad(lambda s, x: jnp.sum(nnx.merge(*nnx.split(stock)[:1], s)(x) ** 2)),
                           nnx.state(stock), x)
        g, r = grads["stages"][2][1]["dwconv"]["kernel"], ref_grads["stages"][2][1]["dwconv"]["kernel"]
        assert max_normalized_error(g[...], r[...]) <= MODEL_TOLERANCE[platform]
    with pytest.raises(ValueError, match="fusion must be one of"):
        fnnx.ConvNeXt(fusion="block", rngs=nnx.Rngs(0))


def test_nnx_mobilenet_v2_torchvision_size():
    from flax import nnx

    from flax_models import nnx as fnnx

    model = nnx.eval_shape(lambda: fnnx.MobileNetV2(rngs=nnx.Rngs(0)))
    assert sum(int(np.prod(a.shape)) for a in jax.tree.leaves(nnx.state(model, nnx.Param))) == 3_504_872
    with pytest.raises(ValueError, match="fusion must be one of"):
        fnnx.MobileNetV2(fusion="sometimes", rngs=nnx.Rngs(0))


def test_depthwise_conv_is_a_drop_in_for_nn_conv(platform, rng):
    # Same parameters (names, shapes, initial values) as nn.Conv(C, (k, k),
    # feature_group_count=C); the same outputs through jax_fcm.depthwise.
    x = images(rng, (2, 13, 11, 24))
    stock = nn.Conv(24, (5, 5), strides=2, padding=2, feature_group_count=24)
    mine = fm.DepthwiseConv(5, strides=2, padding=2, activation="silu")
    variables = stock.init(jax.random.key(1), x)
    mine_variables = mine.init(jax.random.key(1), x)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), variables, mine_variables))
    variables = jax.tree.map(lambda a: a + 0.1 * jnp.asarray(rng.standard_normal(a.shape), a.dtype), variables)
    ref = run_on(platform, lambda v, x: jax.nn.silu(stock.apply(v, x)), variables, x)
    out = run_on(platform, mine.apply, variables, x)
    assert "jax_fcm_depthwise" in jax.jit(mine.apply).lower(variables, x).as_text()
    assert max_normalized_error(out, ref) <= LAYER_TOLERANCE[platform, "float32"]


def test_convnext_matches_stock(platform, rng):
    # A reduced ConvNeXt (one block per stage, narrow): the same parameter
    # tree as the stock model, one depthwise kernel per block, close logits,
    # and gradients through the depthwise kernel's own backward.
    make = lambda fusion: fm.ConvNeXt(num_classes=10, depths=(1, 1, 2, 1), dims=(16, 24, 40, 48),  # noqa: E731
                                      fusion=fusion)
    x = images(rng, (2, 64, 64, 3))
    stock, fused = make("never"), make("auto")
    variables = stock.init(jax.random.key(0), x)
    assert tree_signature(variables) == tree_signature(fused.init(jax.random.key(0), x))
    variables = jax.tree.map(lambda a: a + 0.05 * jnp.asarray(rng.standard_normal(a.shape), a.dtype), variables)
    text = jax.jit(fused.apply).lower(variables, x).as_text()
    assert text.count("jax_fcm_depthwise") == 5
    assert text.count("jax_fcm_conv2d") == 1  # the patchify stem (jax_fcm.conv2d takes every stem)
    # The MLP expansions the planner gives the pointwise kernel (16 to 48
    # channels, no split on these few pixels): all five.
    assert text.count("jax_fcm_pointwise") == 5
    out, ref = run_on(platform, fused.apply, variables, x), run_on(platform, stock.apply, variables, x)
    assert out.shape == (2, 10) and max_normalized_error(out, ref) <= MODEL_TOLERANCE[platform]
    loss = lambda model: lambda v, x: jnp.sum(model.apply(v, x) ** 2)  # noqa: E731
    grads = run_on(platform, jax.grad(loss(fused)), variables, x)
    ref_grads = run_on(platform, jax.grad(loss(stock)), variables, x)
    g, r = grads["params"]["stage2_block1"]["dwconv"], ref_grads["params"]["stage2_block1"]["dwconv"]
    assert max_normalized_error(g["kernel"], r["kernel"]) <= MODEL_TOLERANCE[platform]
    with pytest.raises(ValueError, match="fusion must be one of"):
        fm.ConvNeXt(fusion="block").init(jax.random.key(0), x)


def test_convnext_blocks_as_one_convnext_block_call(platform, rng):
    # bfloat16: the planner runs each block (C <= 192, multiples of 8) as one
    # jax_fcm.convnext_block call (the depthwise kernel, then LayerNorm, MLP
    # and residual in one kernel), with the stock model's parameters; float32
    # keeps the depthwise kernel and the unfused MLP (test above).
    make = lambda fusion: fm.ConvNeXt(num_classes=10, depths=(1, 1, 2, 1), dims=(16, 24, 40, 48),  # noqa: E731
                                      fusion=fusion, dtype=jnp.bfloat16)
    x = images(rng, (2, 64, 64, 3)).astype(jnp.bfloat16)
    stock, fused = make("never"), make("auto")
    variables = stock.init(jax.random.key(0), x)
    assert tree_signature(variables) == tree_signature(fused.init(jax.random.key(0), x))
    variables = jax.tree.map(lambda a: a + 0.05 * jnp.asarray(rng.standard_normal(a.shape), a.dtype), variables)
    text = jax.jit(fused.apply).lower(variables, x).as_text()
    assert text.count("jax_fcm_convnext_mlp") == text.count("jax_fcm_depthwise") == 5
    assert "jax_fcm_pw_pw" not in text and "jax_fcm_pointwise" not in text
    for shape, dtype in (((64, 56, 56, 96), jnp.bfloat16), ((64, 14, 14, 384), jnp.bfloat16),
                         ((64, 56, 56, 96), jnp.float32)):
        # the plan CLI (jax_fcm.plan) shows what the block does
        planned = planner.layer_norm_mlp_choice(shape, shape[-1], dtype)[0]
        assert fm.convnext.block_as_convnext_block(shape, shape[-1], dtype, True, "auto") == planned
    assert not fm.convnext.block_as_convnext_block((64, 56, 56, 96), 96, jnp.bfloat16, False, "auto")
    assert not fm.convnext.block_as_convnext_block((64, 56, 56, 96), 96, jnp.bfloat16, True, False)
    out, ref = run_on(platform, fused.apply, variables, x), run_on(platform, stock.apply, variables, x)
    assert out.shape == (2, 10) and max_normalized_error(out, ref) <= LAYER_TOLERANCE[platform, "bfloat16"]


def test_convnext_block_mlp_as_one_pw_pw_kernel(platform, rng):
    # Without the whole-block kernel (stock depthwise conv), the planner runs
    # the block's MLP (C -> 4C, GELU -> C) as one jax_fcm.pw_pw call, with
    # the stock block's parameters.
    make = lambda pointwise: fm.convnext.ConvNeXtBlock(use_kernel=False, pointwise=pointwise,  # noqa: E731
                                                       dtype=jnp.bfloat16)
    x = images(rng, (2, 16, 16, 32)).astype(jnp.bfloat16)
    stock, fused = make(False), make("auto")
    variables = stock.init(jax.random.key(0), x)
    assert tree_signature(variables) == tree_signature(fused.init(jax.random.key(0), x))
    variables = jax.tree.map(lambda a: a + 0.05 * jnp.asarray(rng.standard_normal(a.shape), a.dtype), variables)
    text = jax.jit(fused.apply).lower(variables, x).as_text()
    assert text.count("jax_fcm_pw_pw") == 1 and "jax_fcm_convnext_mlp" not in text
    assert fm.convnext.mlp_as_pw_pw((64, 56, 56, 96), 96, jnp.bfloat16, "auto")
    assert not fm.convnext.mlp_as_pw_pw((1, 56, 56, 96), 96, jnp.bfloat16, "auto")  # one partial wave: XLA's
    assert fm.convnext.mlp_as_pw_pw((1, 56, 56, 96), 96, jnp.bfloat16, True)
    assert not fm.convnext.mlp_as_pw_pw((64, 14, 14, 384), 384, jnp.bfloat16, True)  # Cin past the kernel's 192
    for shape, dtype in (((64, 56, 56, 96), jnp.bfloat16), ((1, 56, 56, 96), jnp.bfloat16),
                         ((64, 56, 56, 96), jnp.float32), ((64, 28, 28, 192), jnp.bfloat16)):
        # the plan CLI (jax_fcm.plan) shows what the block does
        planned = planner.convnext_mlp_plan(shape, shape[-1], dtype)[0] == "pw_pw"
        assert fm.convnext.mlp_as_pw_pw(shape, shape[-1], dtype, "auto") == planned
    out, ref = run_on(platform, fused.apply, variables, x), run_on(platform, stock.apply, variables, x)
    assert out.shape == x.shape and max_normalized_error(out, ref) <= LAYER_TOLERANCE[platform, "bfloat16"]


@pytest.mark.parametrize("fused", [True, "auto"])
def test_conv_bn_1x1_runs_the_pointwise_kernel(platform, rng, fused):
    # Inference mode: BatchNorm folded into one jax_fcm.pointwise call (a
    # 24-channel input is one the planner picks the kernel for); training
    # mode and fused=False are the stock layers; a 3x3 ConvBN never is.
    x = images(rng, (2, 9, 7, 24))
    stock, mine = fm.ConvBN(40, 1, activation="relu6"), fm.ConvBN(40, 1, activation="relu6", fused=fused)
    variables = with_random_statistics(stock.init(jax.random.key(0), x, False), rng)
    assert tree_signature(variables) == tree_signature(mine.init(jax.random.key(0), x, False))
    apply = lambda model: lambda v, x: model.apply(v, x, True)  # noqa: E731
    assert "jax_fcm_pointwise" in jax.jit(apply(mine)).lower(variables, x).as_text()
    assert "jax_fcm_pointwise" not in jax.jit(apply(stock)).lower(variables, x).as_text()
    out, ref = run_on(platform, apply(mine), variables, x), run_on(platform, apply(stock), variables, x)
    assert max_normalized_error(out, ref) <= LAYER_TOLERANCE[platform, "float32"]
    train = jax.jit(lambda v, x: mine.apply(v, x, False, mutable=["batch_stats"])[0])
    assert "jax_fcm_pointwise" not in train.lower(variables, x).as_text()
    conv3 = fm.ConvBN(40, 3, fused=fused)
    v3 = conv3.init(jax.random.key(0), x, False)
    assert "jax_fcm_pointwise" not in jax.jit(lambda v, x: conv3.apply(v, x, True)).lower(v3, x).as_text()
    with pytest.raises(ValueError, match="fused must be True, False or 'auto'"):
        fm.ConvBN(40, 1, fused="block").apply(variables, x, True)


@pytest.mark.parametrize("fused", [True, "auto"])
def test_conv_bn_stem_runs_the_conv2d_kernel(platform, rng, fused):
    # Inference mode: a 3x3 stride-2 ConvBN over RGB (a stem) is one
    # jax_fcm.conv2d call, BatchNorm folded; training mode and fused=False
    # are the stock layers.
    x = images(rng, (2, 17, 15, 3))
    stock = fm.ConvBN(24, 3, 2, activation="relu6")
    mine = fm.ConvBN(24, 3, 2, activation="relu6", fused=fused)
    variables = with_random_statistics(stock.init(jax.random.key(0), x, False), rng)
    assert tree_signature(variables) == tree_signature(mine.init(jax.random.key(0), x, False))
    apply = lambda model: lambda v, x: model.apply(v, x, True)  # noqa: E731
    assert "jax_fcm_conv2d" in jax.jit(apply(mine)).lower(variables, x).as_text()
    assert "jax_fcm_conv2d" not in jax.jit(apply(stock)).lower(variables, x).as_text()
    out, ref = run_on(platform, apply(mine), variables, x), run_on(platform, apply(stock), variables, x)
    assert max_normalized_error(out, ref) <= LAYER_TOLERANCE[platform, "float32"]
    train = jax.jit(lambda v, x: mine.apply(v, x, False, mutable=["batch_stats"])[0])
    assert "jax_fcm_conv2d" not in train.lower(variables, x).as_text()


# MobileNetV2: the stem; MobileViT-XXS at 32x32, N = 2: the stem and, in each of
# the three MobileViT blocks (4x4, 2x2, 1x1), the local and fusion 3x3 convs,
# small enough outputs for planner.use_conv2d_kernel.
@pytest.mark.parametrize("make, convs", [(model_maker("mobilenet_v2"), 1), (model_maker("mobilevit_xxs"), 7)],
                         ids=["mobilenet_v2", "mobilevit_xxs"])
def test_models_run_dense_convs_as_conv2d(rng, make, convs):
    x = images(rng, (2, 32, 32, 3))
    auto, stock = make("auto"), make("never")
    variables = stock.init(jax.random.key(0), x)
    assert jax.jit(lambda v, x: auto.apply(v, x)).lower(variables, x).as_text().count("jax_fcm_conv2d") == convs
    assert "jax_fcm_conv2d" not in jax.jit(lambda v, x: stock.apply(v, x)).lower(variables, x).as_text()


def test_mobilevit_runs_conv2d_where_the_plan_says():
    # At 224x224, N = 1: the stem and the 14x14 and 7x7 MobileViT blocks' 3x3
    # convs (model_layers.dense_convs, as `python -m jax_fcm.plan` lists them).
    model, x = fm.MobileViT("xxs", num_classes=10), jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.key(0), x)
    planned = sum(planner.use_conv2d_kernel((1, h, h, cin), (k, k, cin, cout), s, pad)
                  for _, h, cin, cout, k, s, pad in model_layers.dense_convs("mobilevit_xxs"))
    assert planned == 5
    assert jax.jit(model.apply).lower(variables, x).as_text().count("jax_fcm_conv2d") == planned


def test_dense_conv_is_a_drop_in_for_nn_conv(platform, rng):
    x = images(rng, (2, 16, 12, 3))
    stock, mine = nn.Conv(32, (4, 4), strides=4, padding="VALID"), fm.DenseConv(32, 4, 4, "VALID", use_kernel=True)
    variables = stock.init(jax.random.key(1), x)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), variables,
                                     mine.init(jax.random.key(1), x)))
    variables = jax.tree.map(lambda a: a + 0.1 * jnp.asarray(rng.standard_normal(a.shape), a.dtype), variables)
    ref = run_on(platform, stock.apply, variables, x)
    assert "jax_fcm_conv2d" in jax.jit(mine.apply).lower(variables, x).as_text()
    assert max_normalized_error(run_on(platform, mine.apply, variables, x), ref) <= LAYER_TOLERANCE[platform, "float32"]
    xla = fm.DenseConv(32, 4, 4, "VALID", use_kernel=False)
    assert "jax_fcm_conv2d" not in jax.jit(xla.apply).lower(variables, x).as_text()
    assert max_normalized_error(run_on(platform, xla.apply, variables, x), ref) <= LAYER_TOLERANCE[platform, "float32"]


def test_pointwise_dense_is_a_drop_in_for_nn_dense(platform, rng):
    x = images(rng, (2, 5, 6, 24))
    stock, mine = nn.Dense(64), fm.PointwiseDense(64, "gelu_exact", use_kernel=True)
    variables = stock.init(jax.random.key(1), x)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), variables,
                                     mine.init(jax.random.key(1), x)))
    variables = jax.tree.map(lambda a: a + 0.1 * jnp.asarray(rng.standard_normal(a.shape), a.dtype), variables)
    ref = run_on(platform, lambda v, x: nn.gelu(stock.apply(v, x), approximate=False), variables, x)
    out = run_on(platform, mine.apply, variables, x)
    assert "jax_fcm_pointwise" in jax.jit(mine.apply).lower(variables, x).as_text()
    assert max_normalized_error(out, ref) <= LAYER_TOLERANCE[platform, "float32"]
    xla = fm.PointwiseDense(64, "gelu_exact", use_kernel=False)
    assert "jax_fcm_pointwise" not in jax.jit(xla.apply).lower(variables, x).as_text()
    assert max_normalized_error(run_on(platform, xla.apply, variables, x), ref) <= LAYER_TOLERANCE[platform, "float32"]


# (input shape, ConvBN arguments, the kernel its inference runs): a 1x1 layer
# on jax_fcm.pointwise, a stride-2 3x3 stem on jax_fcm.conv2d.
NNX_CONV_BNS = [((2, 9, 7, 24), (24, 40, 1), "jax_fcm_pointwise"), ((2, 17, 15, 3), (3, 16, 3, 2), "jax_fcm_conv2d")]


@pytest.mark.parametrize("shape,layer,target", NNX_CONV_BNS, ids=["1x1_pointwise", "stem_conv2d"])
def test_nnx_conv_bn_runs_its_kernel(platform, rng, shape, layer, target):
    from flax import nnx

    from flax_models import nnx as fnnx

    x, features = images(rng, shape), layer[1]
    stock = fnnx.ConvBN(*layer, activation="silu", rngs=nnx.Rngs(0))
    mine = fnnx.ConvBN(*layer, activation="silu", fused="auto", rngs=nnx.Rngs(0))
    for model in (stock, mine):
        model.bn.mean[...] = jnp.asarray(rng.standard_normal(features) * 0.1, jnp.float32)
        model.bn.var[...] = jnp.asarray(rng.uniform(0.5, 1.5, features), jnp.float32)
        model.eval()
    mine.bn.mean[...], mine.bn.var[...] = stock.bn.mean[...], stock.bn.var[...]
    graph, state = nnx.split(mine)
    assert target in jax.jit(lambda s, x: nnx.merge(graph, s)(x)).lower(state, x).as_text()
    out = run_on(platform, lambda s, x: nnx.merge(graph, s)(x), state, x)
    stock_graph, stock_state = nnx.split(stock)
    ref = run_on(platform, lambda s, x: nnx.merge(stock_graph, s)(x), stock_state, x)
    assert max_normalized_error(out, ref) <= LAYER_TOLERANCE[platform, "float32"]


def test_nnx_depthwise_conv_is_a_drop_in_for_nnx_conv(platform, rng):
    from flax import nnx

    from flax_models import nnx as fnnx

    stock = nnx.Conv(24, 24, (5, 5), strides=2, padding=2, feature_group_count=24, rngs=nnx.Rngs(3))
    mine = fnnx.DepthwiseConv(24, 5, 2, 2, activation="relu6", rngs=nnx.Rngs(3))
    # Same state, same initial values (the same random keys in the same order).
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), nnx.state(stock), nnx.state(mine)))
    x = images(rng, (2, 13, 11, 24))
    graph, state = nnx.split(mine)
    assert "jax_fcm_depthwise" in jax.jit(lambda s, x: nnx.merge(graph, s)(x)).lower(state, x).as_text()
    out = run_on(platform, lambda s, x: nnx.merge(graph, s)(x), state, x)
    stock_graph, stock_state = nnx.split(stock)
    ref = run_on(platform, lambda s, x: jnp.clip(nnx.merge(stock_graph, s)(x), 0, 6), stock_state, x)
    assert max_normalized_error(out, ref) <= LAYER_TOLERANCE[platform, "float32"]
