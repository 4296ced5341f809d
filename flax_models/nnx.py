"""NNX layers and models: ``from flax_models import nnx as fnnx; fnnx.MobileNetV2(rngs=nnx.Rngs(0))``."""

from flax_models.nnx_convnext import ConvNeXt, ConvNeXtBlock, load_linen_convnext
from flax_models.nnx_efficientnet import EfficientNetB0, SqueezeExcite, SqueezeExciteResidual
from flax_models.nnx_layers import ConvBN, DepthwiseConv, ExpandDepthwise, InvertedResidual, SeparableConv
from flax_models.nnx_models import EfficientNetLite0, MobileNetV1, MobileNetV2
from flax_models.nnx_mobilevit import MobileViT, MobileViTBlock

__all__ = ["ConvBN", "ConvNeXt", "ConvNeXtBlock", "DepthwiseConv", "EfficientNetB0", "EfficientNetLite0",
           "ExpandDepthwise", "InvertedResidual", "MobileNetV1", "MobileNetV2", "MobileViT", "MobileViTBlock",
           "SeparableConv", "SqueezeExcite", "SqueezeExciteResidual", "load_linen_convnext"]
