"""Architectures as data, shared by the planner (jax_fcm.plan) and the Flax
models (flax_models): the stage tables, and the depthwise -> pointwise pairs
they contain at a given input size."""

from __future__ import annotations

import math

# (output channels, stride) of MobileNetV1's 13 separable blocks (after a 32-channel stride-2 stem).
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)) + ((512, 1),) * 5 + (
    (1024, 2), (1024, 1))

# (expansion t, output channels c, repeats n, first stride s) of MobileNetV2 (32-channel stem).
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1))

# (expansion t, kernel k, first stride s, output channels c, repeats n) of EfficientNet-Lite0 (32-channel stem).
EFFICIENTNET_LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                             (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))


# MobileViT (Mehta & Rastegari, ICLR 2022): channels of the stem and the five
# stages, the 1x1 head, the transformer widths of stages 3-5 and the MV2
# expansion; the three MobileViT blocks have 2, 4 and 3 transformer layers.
MOBILEVIT_VARIANTS = {
    "xxs": ((16, 16, 24, 48, 64, 80), 320, (64, 80, 96), 2),
    "xs": ((16, 32, 48, 64, 80, 96), 384, (96, 120, 144), 4),
    "s": ((16, 32, 64, 96, 128, 160), 640, (144, 192, 240), 4),
}
MOBILEVIT_DEPTHS = (2, 4, 3)

# ConvNeXt (Liu et al. 2022): blocks and channels of the four stages.
CONVNEXT_VARIANTS = {  # (depths, dims)
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768)),
}


def convnext_stages(variant: str, image_size: int = 224):
    """(blocks, H, C) of each stage: a 4x4 stride-4 stem, then a 2x2 stride-2
    downsampling before every stage but the first (both unpadded)."""
    if variant not in CONVNEXT_VARIANTS:
        raise ValueError(f"ConvNeXt variant must be one of {tuple(CONVNEXT_VARIANTS)}; got {variant!r}")
    depths, dims = CONVNEXT_VARIANTS[variant]
    sizes = [image_size // 4 // 2**i for i in range(len(depths))]
    return list(zip(depths, sizes, dims))


def mobilevit_layers(variant: str):
    """After the stem, in network order: ("mv2", expansion, stride, channels)
    inverted residuals and ("vit", width, depth) MobileViT blocks."""
    if variant not in MOBILEVIT_VARIANTS:
        raise ValueError(f"MobileViT variant must be one of {tuple(MOBILEVIT_VARIANTS)}; got {variant!r}")
    (_, c1, c2, c3, c4, c5), _, widths, t = MOBILEVIT_VARIANTS[variant]
    layers = [("mv2", t, 1, c1), ("mv2", t, 2, c2), ("mv2", t, 1, c2), ("mv2", t, 1, c2)]
    for channels, width, depth in zip((c3, c4, c5), widths, MOBILEVIT_DEPTHS):
        layers += [("mv2", t, 2, channels), ("vit", width, depth)]
    return layers


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: nearest multiple of divisor, never more than 10 % down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def dw_pw_pairs(model: str, image_size: int = 224, width_multiplier: float = 1.0):
    """(name, H, C, Cout, k, stride, Cin) of every depthwise -> pointwise pair,
    H the depthwise input size (square), Cin the block's input channels before
    its 1x1 expansion (== C where there is none), in network order."""
    c = stem_channels(model, width_multiplier)
    if c is None:
        raise ValueError(f"model must be one of {MODELS}; got {model!r}")
    size = math.ceil(image_size / 2)  # every stem has stride 2
    pairs = []
    if model == "mobilenet_v1":
        for i, (out, s) in enumerate(MOBILENET_V1_BLOCKS):
            out = int(out * width_multiplier)
            pairs.append((f"block{i}", size, c, out, 3, s, c))
            size, c = math.ceil(size / s), out
    elif model in ("mobilenet_v2", "efficientnet_lite0"):
        if model == "mobilenet_v2":
            stages = [(t, 3, s, make_divisible(out * width_multiplier), n) for t, out, n, s in MOBILENET_V2_STAGES]
        else:
            stages = EFFICIENTNET_LITE0_STAGES
        index = 0
        for t, k, s, out, n in stages:
            for j in range(n):
                stride = s if j == 0 else 1
                pairs.append((f"block{index}", size, c * t, out, k, stride, c))
                size, c, index = math.ceil(size / stride), out, index + 1
    else:  # MobileViT
        mv2 = [layer for layer in mobilevit_layers(model[len("mobilevit_"):]) if layer[0] == "mv2"]
        for index, (_, t, stride, out) in enumerate(mv2):
            pairs.append((f"block{index}", size, c * t, out, 3, stride, c))
            size, c = math.ceil(size / stride), out
    return pairs


def stem_channels(model: str, width_multiplier: float = 1.0) -> int | None:
    """Output channels of the stride-2 3x3 stem of the MobileNets,
    EfficientNet-Lite0 and MobileViT (as the Flax models build it); None for
    other models."""
    if model == "mobilenet_v1":
        return int(32 * width_multiplier)
    if model == "mobilenet_v2":
        return make_divisible(32 * width_multiplier)
    if model == "efficientnet_lite0":
        return 32
    if model.startswith("mobilevit_") and model[len("mobilevit_"):] in MOBILEVIT_VARIANTS:
        return MOBILEVIT_VARIANTS[model[len("mobilevit_"):]][0][0]
    return None


def dense_convs(model: str, image_size: int = 224, width_multiplier: float = 1.0):
    """(name, H, Cin, Cout, k, stride, padding) of every dense k x k convolution
    the Flax models run through the planner (ConvBN / DenseConv with "auto"),
    H the input size (square), in network order: the stems, and MobileViT's
    local (C -> C) and fusion (2C -> C) 3x3 convs in each MobileViT block.
    ConvNeXt's 2x2 downsamplings stay stock nn.Conv and are not listed."""
    if model.startswith("convnext_"):
        convnext_stages(model[len("convnext_"):])  # checks the variant
        return [("stem", image_size, 3, CONVNEXT_VARIANTS[model[len("convnext_"):]][1][0], 4, 4, "VALID")]
    stem = stem_channels(model, width_multiplier)
    if stem is None:
        raise ValueError(f"model must be one of {MODELS + CONVNEXT_MODELS}; got {model!r}")
    convs = [("stem", image_size, 3, stem, 3, 2, "SAME")]
    if model.startswith("mobilevit_"):
        size, c, vit = math.ceil(image_size / 2), None, 0
        for layer in mobilevit_layers(model[len("mobilevit_"):]):
            if layer[0] == "mv2":
                size, c = math.ceil(size / layer[2]), layer[3]
            else:
                convs += [(f"vit{vit}_local", size, c, c, 3, 1, "SAME"), (f"vit{vit}_fusion", size, 2 * c, c, 3, 1, "SAME")]
                vit += 1
    return convs


MODELS = ("mobilenet_v1", "mobilenet_v2", "efficientnet_lite0") + tuple(f"mobilevit_{v}" for v in MOBILEVIT_VARIANTS)
# ConvNeXt has no depthwise -> pointwise pairs (a LayerNorm sits between): its plan is per stage.
CONVNEXT_MODELS = tuple(f"convnext_{v}" for v in CONVNEXT_VARIANTS)


def block_activation(model: str) -> str:
    """The activation of a model's inverted-residual blocks (what the
    whole-block kernel would apply to the expanded tensor): SiLU in
    MobileViT, ReLU6 in MobileNetV2 and EfficientNet-Lite0 (MobileNetV1 has
    no expansions)."""
    return "silu" if model.startswith("mobilevit_") else "relu6"
