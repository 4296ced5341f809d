"""int8 inference for a trained Linen MobileNetV1: every depthwise-separable
block as one ``jax_fcm.dw_pw_int8`` kernel (BatchNorm folded, then quantized
in jax_fcm.quantization's scheme), chained in int8 — each block's output
scale is the next block's input scale, so activations stay int8 from the
stem's output to the last block; the stem and the classifier stay float.

    qnet = quantize_mobilenet_v1(model, variables, calibration_images)
    logits = jax.jit(apply_quantized_mobilenet_v1)(qnet, images)

Calibration (max-abs, per tensor) runs the float blocks on the given images;
a few hundred representative images are the usual amount."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

import jax_fcm
from flax_models.folding import fold_batch_norm
from flax_models.mobilenet import MobileNetV1
from jax_fcm import quantization
from jax_fcm.model_layers import MOBILENET_V1_BLOCKS


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class QuantizedMobileNetV1:
    """A MobileNetV1 for int8 inference (a pytree: pass it to jit).

    stem_kernel, stem_bias: the stem's 3x3 stride-2 conv with its BatchNorm
    folded (float32); blocks: one jax_fcm.quantization.QuantizedDwPw per
    separable block; classifier_kernel, classifier_bias: the Dense layer;
    strides: each block's stride (static)."""

    stem_kernel: jax.Array
    stem_bias: jax.Array
    blocks: tuple
    classifier_kernel: jax.Array
    classifier_bias: jax.Array
    strides: tuple = dataclasses.field(metadata=dict(static=True), default=())


def _stem(x, kernel, bias):
    y = jax.lax.conv_general_dilated(x, kernel, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=jax.lax.Precision.HIGHEST)
    return jax.nn.relu(y + bias)


def quantize_mobilenet_v1(model: MobileNetV1, variables, calibration_images) -> QuantizedMobileNetV1:
    """The int8 network of a MobileNetV1 (Keras-style, ReLU blocks) and its
    trained variables, with activation scales calibrated on
    ``calibration_images`` (float NHWC, the model's input)."""
    if not isinstance(model, MobileNetV1):
        raise TypeError(f"model must be a flax_models.MobileNetV1; got {type(model).__name__}")
    params, stats = variables["params"], variables["batch_stats"]
    eps = 1e-3  # MobileNetV1's BatchNorm epsilon (flax_models.mobilenet)
    stem_kernel, stem_bias = fold_batch_norm(params["stem"]["conv"]["kernel"], params["stem"]["bn"],
                                             stats["stem"]["bn"], eps)
    h = _stem(jnp.asarray(calibration_images, jnp.float32), stem_kernel, stem_bias)
    blocks, strides, input_scale = [], [], None
    for i, (_, stride) in enumerate(MOBILENET_V1_BLOCKS):
        p, s = params[f"block{i}"], stats[f"block{i}"]
        dw, dw_bias = fold_batch_norm(p["dw_conv"]["kernel"], p["dw_bn"], s["dw_bn"], eps)
        pw, pw_bias = fold_batch_norm(p["pw_conv"]["kernel"], p["pw_bn"], s["pw_bn"], eps)
        acts = dict(dw_activation="relu", pw_activation="relu")
        scales = quantization.calibrate_dw_pw(h, dw, pw, dw_bias, pw_bias, strides=stride, **acts)
        if input_scale is not None:
            scales["input_scale"] = input_scale  # the previous block's output: chained in int8
        q = quantization.quantize_dw_pw(dw, pw, dw_bias, pw_bias, **scales, **acts)
        blocks.append(q)
        strides.append(stride)
        input_scale = q.output_scale
        h = jax_fcm.dw_pw(h, dw, pw, dw_bias, pw_bias, strides=stride, implementation="xla", precision="highest",
                          **acts)
    classifier = params["classifier"]
    return QuantizedMobileNetV1(stem_kernel=stem_kernel, stem_bias=stem_bias, blocks=tuple(blocks),
                                classifier_kernel=jnp.asarray(classifier["kernel"], jnp.float32),
                                classifier_bias=jnp.asarray(classifier["bias"], jnp.float32), strides=tuple(strides))


def apply_quantized_mobilenet_v1(qnet: QuantizedMobileNetV1, images, implementation=None):
    """Logits of the int8 network (float32). ``implementation`` is passed to
    every jax_fcm.dw_pw_int8 (None: the fused kernel; "xla": lax ops)."""
    h = _stem(jnp.asarray(images, jnp.float32), qnet.stem_kernel, qnet.stem_bias)
    q = quantization.quantize(h, qnet.blocks[0].input_scale)
    for block, stride in zip(qnet.blocks, qnet.strides):
        q = jax_fcm.dw_pw_int8(q, block, strides=stride, implementation=implementation)
    features = jnp.mean(quantization.dequantize(q, qnet.blocks[-1].output_scale), axis=(1, 2))
    # In full fp32 like the stem (the GPU's default precision would multiply in TF32).
    return jnp.dot(features, qnet.classifier_kernel, precision=jax.lax.Precision.HIGHEST) + qnet.classifier_bias
