"""The int8 MobileNetV1 (flax_models.quantized): the fused kernels give the
same logits as the same integer math in lax ops, and the int8 network tracks
the float model it was converted from."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_on

from flax_models import quantized
from flax_models.mobilenet import MobileNetV1


@pytest.fixture(scope="module")
def converted():
    model = MobileNetV1(num_classes=10, width_multiplier=0.25, fusion="never")
    images = jax.random.normal(jax.random.PRNGKey(0), (6, 64, 64, 3))
    variables = model.init(jax.random.PRNGKey(1), images)
    # Trained-looking BatchNorm statistics: per-channel means and variances away from 0 and 1.
    keys = iter(jax.random.split(jax.random.PRNGKey(2), 1000))
    stats = jax.tree_util.tree_map_with_path(
        lambda path, a: (jax.random.uniform(next(keys), a.shape, minval=0.5, maxval=2.0) if path[-1].key == "var"
                         else 0.1 * jax.random.normal(next(keys), a.shape)), variables["batch_stats"])
    variables = {"params": variables["params"], "batch_stats": stats}
    with jax.default_device(jax.devices("cpu")[0]):
        qnet = quantized.quantize_mobilenet_v1(model, variables, images)
        float_logits = np.asarray(model.apply(variables, images, train=False))
    return qnet, images, float_logits


def test_kernel_matches_the_integer_reference(platform, converted):
    qnet, images, _ = converted
    got = run_on(platform, quantized.apply_quantized_mobilenet_v1, qnet, images)
    with jax.default_device(jax.devices("cpu")[0]):
        want = quantized.apply_quantized_mobilenet_v1(qnet, images, implementation="xla")
    # The int8 activations are identical; only the float head (mean, Dense) may round differently.
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6 * np.abs(want).max())


def test_int8_network_tracks_the_float_model(converted):
    qnet, images, float_logits = converted
    with jax.default_device(jax.devices("cpu")[0]):
        logits = np.asarray(quantized.apply_quantized_mobilenet_v1(qnet, images))
    cosine = np.sum(logits * float_logits, -1) / np.linalg.norm(logits, axis=-1) / np.linalg.norm(float_logits, axis=-1)
    assert cosine.min() > 0.99, cosine
    assert np.mean(logits.argmax(-1) == float_logits.argmax(-1)) >= 5 / 6
    # Chained in int8: each block reads the previous block's output scale.
    for before, after in zip(qnet.blocks, qnet.blocks[1:]):
        assert after.input_scale == before.output_scale


def test_rejects_other_models():
    with pytest.raises(TypeError, match="MobileNetV1"):
        quantized.quantize_mobilenet_v1(object(), {}, jnp.zeros((1, 32, 32, 3)))
