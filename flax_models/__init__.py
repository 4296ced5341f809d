"""Flax (Linen) layers and models built on jax_fcm's fused kernels, with the
parameter trees of the stock unfused definitions."""

from flax_models.folding import fold_batch_norm
from flax_models.layers import ConvBN, InvertedResidual, SeparableConv
from flax_models.mobilenet import FUSION_CHOICES, MobileNetV1, MobileNetV2

__all__ = ["FUSION_CHOICES", "ConvBN", "InvertedResidual", "MobileNetV1", "MobileNetV2", "SeparableConv",
           "fold_batch_norm"]
