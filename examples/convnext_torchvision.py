"""torchvision's ConvNeXt weights in the fused Flax ConvNeXt: same logits as the stock model.

    python3 examples/convnext_torchvision.py [--weights convnext_tiny.safetensors] [--batch 64] [--dtype bfloat16]

--weights: a torchvision ``convnext_tiny`` state dict saved as .safetensors
(``safetensors.torch.save_file(torchvision.models.convnext_tiny(weights="DEFAULT").state_dict(), path)``),
read without torch; without it, random weights in torchvision's layout stand in.
flax_models.convnext_from_torchvision maps every parameter onto
flax_models.ConvNeXt("tiny"); the fused model (fusion="auto": each block as one
jax_fcm.convnext_block call where the planner picks it, the depthwise kernel
elsewhere) and the stock one (fusion="never") share the variables. Inputs are
NHWC, normalized as torchvision's preset does (here random). Times are host
wall-clock medians around jitted calls; `python -m jax_fcm.bench --models
convnext_tiny` measures device time.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import flax_models
from flax_models.benchmark import median_ms


def torchvision_state_dict(path: str | None, size: int) -> dict:
    if path:
        return flax_models.read_safetensors(path)
    # Random weights, written in torchvision's layout: the path real ones take.
    model = flax_models.ConvNeXt(fusion="never")
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, size, size, 3))))
    rng = np.random.default_rng(0)
    random = jax.tree.map(lambda a: (rng.standard_normal(a.shape) * 0.05).astype(np.float32), shapes)
    return flax_models.convnext_to_torchvision(random)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", help="torchvision convnext_tiny state dict (.safetensors)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    args = parser.parse_args()
    dtype = jnp.dtype(args.dtype)

    variables = flax_models.convnext_from_torchvision(torchvision_state_dict(args.weights, args.size), "tiny")
    stock = flax_models.ConvNeXt("tiny", fusion="never", dtype=dtype)
    fused = flax_models.ConvNeXt("tiny", fusion="auto", dtype=dtype)
    images = jax.random.normal(jax.random.key(0), (args.batch, args.size, args.size, 3), dtype)

    run_stock = jax.jit(lambda v, x: stock.apply(v, x))
    run_fused = jax.jit(lambda v, x: fused.apply(v, x))
    ref, out = run_stock(variables, images), run_fused(variables, images)
    err = float(jnp.max(jnp.abs(out.astype(jnp.float32) - ref.astype(jnp.float32))))
    print(f"{jax.devices()[0].device_kind}: {sum(np.size(a) for a in jax.tree.leaves(variables)):,} parameters; "
          f"max |fused - stock| logit difference {err:.2e} (logits up to "
          f"{float(jnp.max(jnp.abs(ref.astype(jnp.float32)))):.2f})")
    t_stock, t_fused = median_ms(run_stock, variables, images), median_ms(run_fused, variables, images)
    print(f"batch {args.batch} {dtype.name}: stock {t_stock:.2f} ms, fused {t_fused:.2f} ms "
          f"({t_stock / t_fused:.2f}x)")


if __name__ == "__main__":
    main()
