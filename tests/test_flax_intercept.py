"""flax_models.jax_fcm_convs: a user's own Linen model, unchanged, with its
nn.Conv calls on jax_fcm's ops - the same outputs and gradients as the stock
model, each kind of conv on the op it should take, the rest left stock."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import max_normalized_error, run_on

import flax_models
from flax_models.intercept import conv_op, linen_call
from jax_fcm import planner


class UserNet(nn.Module):
    """What a user might have written: a stem, separable blocks (depthwise
    stride 1 and 2, 5x5 with explicit padding), a 1x1 head, plus convs no op
    takes (grouped, dilated, circular padding)."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(16, (3, 3), strides=2, name="stem")(x))
        x = nn.Conv(16, (3, 3), feature_group_count=16, name="dw1")(x)
        x = nn.relu(nn.Conv(24, (1, 1), name="pw1")(x))
        x = nn.Conv(24, (5, 5), strides=2, padding=((2, 2), (2, 2)), feature_group_count=24, use_bias=False,
                    name="dw2")(x)
        x = nn.Conv(24, (3, 3), feature_group_count=4, name="grouped")(x)
        x = nn.Conv(24, (3, 3), kernel_dilation=2, name="dilated")(x)
        x = nn.Conv(24, (3, 3), padding="CIRCULAR", feature_group_count=24, name="circular")(x)
        return nn.Conv(40, (1, 1), name="head")(x)


def targets(text: str) -> dict[str, int]:
    return {op: text.count(f"jax_fcm_{op}") for op in ("depthwise", "pointwise", "conv2d")}


@pytest.fixture
def model_and_variables(rng):
    x = jnp.asarray(rng.standard_normal((2, 17, 15, 3)), jnp.float32)
    model = UserNet()
    return model, model.init(jax.random.key(0), x), x


def test_runs_each_conv_on_its_op(platform, model_and_variables):
    model, variables, x = model_and_variables
    stock = run_on(platform, model.apply, variables, x)
    with flax_models.jax_fcm_convs():
        mine = run_on(platform, model.apply, variables, x)
        text = jax.jit(model.apply).lower(variables, x).as_text()
    assert max_normalized_error(mine, stock) <= (1e-5 if platform == "cpu" else 5e-3)  # TF32 GEMMs on a GPU
    # Both depthwise convs; the stem (a 27-value window: conv2d by the
    # planner's rule); each 1x1 where planner.use_pointwise_kernel picks it.
    pointwise = sum(planner.use_pointwise_kernel(shape, cout, jnp.float32)
                    for shape, cout in (((2, 9, 8, 16), 24), ((2, 5, 4, 24), 40)))
    assert targets(text) == {"depthwise": 2, "pointwise": pointwise, "conv2d": 1}
    assert targets(jax.jit(model.apply).lower(variables, x).as_text()) == {"depthwise": 0, "pointwise": 0,
                                                                           "conv2d": 0}  # outside: stock


def test_kinds_can_be_switched_off(model_and_variables):
    model, variables, x = model_and_variables
    with flax_models.jax_fcm_convs(pointwise=False, dense=False):
        text = jax.jit(model.apply).lower(variables, x).as_text()
    assert targets(text) == {"depthwise": 2, "pointwise": 0, "conv2d": 0}


def test_gradients_match_the_stock_model(model_and_variables):
    model, variables, x = model_and_variables

    def loss(params):
        return jnp.sum(model.apply({"params": params}, x) ** 2)

    stock = jax.grad(loss)(variables["params"])
    with flax_models.jax_fcm_convs():
        mine = jax.jit(jax.grad(loss))(variables["params"])
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(stock), jax.tree_util.tree_leaves(mine)):
        assert max_normalized_error(b, a) <= 1e-5, path


def test_init_inside_is_the_stock_init(model_and_variables):
    model, variables, x = model_and_variables
    with flax_models.jax_fcm_convs():
        inside = model.init(jax.random.key(0), x)
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: bool(jnp.array_equal(a, b)), inside, variables))


@pytest.mark.parametrize("conv, x_shape, op", [
    (nn.Conv(8, (3, 3), feature_group_count=8), (1, 9, 9, 8), "depthwise"),
    (nn.Conv(8, (3, 3), strides=2, padding=1, feature_group_count=8), (1, 9, 9, 8), "depthwise"),
    (nn.Conv(8, 3, feature_group_count=8), (1, 9, 8), None),  # an int kernel_size is a 1-D conv
    (nn.Conv(16, (3, 3), feature_group_count=8), (1, 9, 9, 8), None),  # depth multiplier 2
    (nn.Conv(8, (3, 3), strides=(1, 2), feature_group_count=8), (1, 9, 9, 8), None),  # unequal strides
    (nn.Conv(8, (9, 9), feature_group_count=8), (1, 9, 9, 8), None),  # no 9x9 depthwise kernel
    (nn.Conv(8, (1, 1)), (2, 1, 9, 9, 8), "pointwise"),  # extra leading axes
    (nn.Conv(8, (1, 1), padding=1), (1, 9, 9, 8), "dense"),  # a padded 1x1 grows the output
    (nn.Conv(8, (1, 1), strides=2), (1, 9, 9, 8), "dense"),
    (nn.Conv(8, (2, 2), strides=2, padding="VALID"), (1, 9, 9, 8), "dense"),
    (nn.Conv(8, (3, 3)), (9, 9, 8), None),  # unbatched
    (nn.Conv(8, (3,)), (1, 9, 8), None),  # 1-D
    (nn.Conv(8, (3, 3), input_dilation=2), (1, 9, 9, 8), None),
    (nn.Conv(8, (3, 3), padding="REFLECT"), (1, 9, 9, 8), None),
    (nn.Conv(8, (3, 3), mask=np.ones((3, 3, 8, 8))), (1, 9, 9, 8), None),
])
def test_which_op_takes_a_conv(conv, x_shape, op):
    assert conv_op(linen_call(conv), x_shape, {"depthwise", "pointwise", "dense"}) == op


def test_benchmark_times_the_stock_model_on_jax_fcm_ops(model_and_variables):
    # bench --models' "stock + jax_fcm_convs" column: the context entered while the timed function is traced.
    import functools

    from flax_models import benchmark

    model, variables, x = model_and_variables
    text = jax.jit(functools.partial(benchmark.intercepted, model)).lower(variables, x).as_text()
    assert targets(text)["depthwise"] == 2


class UserNnxNet:
    """UserNet's layers in NNX (built lazily: flax.nnx is imported in the tests)."""

    @staticmethod
    def make():
        from flax import nnx

        class Net(nnx.Module):
            def __init__(self, rngs):
                self.stem = nnx.Conv(3, 16, (3, 3), strides=2, rngs=rngs)
                self.dw1 = nnx.Conv(16, 16, (3, 3), feature_group_count=16, rngs=rngs)
                self.pw1 = nnx.Conv(16, 24, (1, 1), rngs=rngs)
                self.dw2 = nnx.Conv(24, 24, (5, 5), strides=2, padding=((2, 2), (2, 2)), feature_group_count=24,
                                    use_bias=False, rngs=rngs)
                self.grouped = nnx.Conv(24, 24, (3, 3), feature_group_count=4, rngs=rngs)
                self.head = nnx.Conv(24, 40, (1, 1), rngs=rngs)

            def __call__(self, x):
                x = nnx.relu(self.stem(x))
                x = nnx.relu(self.pw1(self.dw1(x)))
                return self.head(self.grouped(self.dw2(x)))

        return Net(nnx.Rngs(0))


def test_nnx_convs_run_on_their_ops(platform, rng):
    from flax import nnx

    model, x = UserNnxNet.make(), jnp.asarray(rng.standard_normal((2, 17, 15, 3)), jnp.float32)
    graph, state = nnx.split(model)

    def apply():  # a new function each time: jit would reuse a trace made outside the context
        return lambda s, x: nnx.merge(graph, s)(x)

    def grads():
        f = apply()
        return run_on(platform, jax.grad(lambda s, x: jnp.sum(f(s, x) ** 2)), state, x)

    stock, stock_grads = run_on(platform, apply(), state, x), grads()
    with flax_models.jax_fcm_convs():
        mine, mine_grads = run_on(platform, apply(), state, x), grads()
        text = jax.jit(apply()).lower(state, x).as_text()
    pointwise = sum(planner.use_pointwise_kernel(shape, cout, jnp.float32)
                    for shape, cout in (((2, 9, 8, 16), 24), ((2, 5, 4, 24), 40)))
    assert targets(text) == {"depthwise": 2, "pointwise": pointwise, "conv2d": 1}
    tolerance = 1e-5 if platform == "cpu" else 5e-3  # TF32 GEMMs on a GPU (XLA's and the kernels')
    assert max_normalized_error(mine, stock) <= tolerance
    assert targets(jax.jit(apply()).lower(state, x).as_text())["depthwise"] == 0  # restored on exit
    for a, b in zip(jax.tree_util.tree_leaves(stock_grads), jax.tree_util.tree_leaves(mine_grads)):
        assert max_normalized_error(b, a) <= tolerance
