"""Flax layers and models built on jax_fcm's fused kernels, with the parameter
trees of the stock unfused definitions: Linen here, NNX in flax_models.nnx."""

from flax_models.convnext import ConvNeXt, ConvNeXtBlock, DenseConv, DepthwiseConv, PointwiseDense
from flax_models.efficientnet import EfficientNetB0, SqueezeExcite, SqueezeExciteResidual
from flax_models.folding import fold_batch_norm
from flax_models.intercept import jax_fcm_convs
from flax_models.layers import ConvBN, ExpandDepthwise, InvertedResidual, SeparableConv
from flax_models.torchvision import (convnext_from_torchvision, convnext_to_torchvision, mobilenet_v2_from_torchvision,
                                    mobilenet_v2_to_torchvision, read_safetensors)
from flax_models.mobilenet import FUSION_CHOICES, EfficientNetLite0, MobileNetV1, MobileNetV2
from flax_models.mobilevit import MobileViT, MobileViTBlock

__all__ = [
    "FUSION_CHOICES", "ConvBN", "ConvNeXt", "ConvNeXtBlock", "DenseConv", "DepthwiseConv", "EfficientNetB0",
    "EfficientNetLite0", "ExpandDepthwise", "InvertedResidual", "MobileNetV1", "MobileNetV2", "MobileViT",
    "MobileViTBlock", "PointwiseDense", "SeparableConv", "SqueezeExcite", "SqueezeExciteResidual",
    "convnext_from_torchvision", "convnext_to_torchvision", "fold_batch_norm", "jax_fcm_convs",
    "mobilenet_v2_from_torchvision", "mobilenet_v2_to_torchvision", "read_safetensors"
]
