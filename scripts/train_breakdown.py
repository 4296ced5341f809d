"""Per-kernel device time of XLA's DW->PW training step and of its pieces."""
import collections, glob, os, sys, tempfile
import jax, jax.numpy as jnp, numpy as np
from jax import lax
from jax.profiler import ProfileData
from jax_fcm import bench, reference

def kernels(fn, args, iters=20):
    j = jax.jit(fn)
    for _ in range(3): jax.block_until_ready(j(*args))
    with tempfile.TemporaryDirectory() as d:
        jax.profiler.start_trace(d)
        for _ in range(iters): out = j(*args)
        jax.block_until_ready(out); jax.profiler.stop_trace()
        p = glob.glob(os.path.join(d, "**", "*.xplane.pb"), recursive=True)[0]
        acc = collections.Counter()
        for plane in ProfileData.from_file(p).planes:
            if not plane.name.startswith("/device:GPU:0"): continue
            for line in plane.lines:
                if not line.name.startswith("Stream"): continue
                for e in line.events:
                    if "memcpy" in e.name.lower() or "memset" in e.name.lower(): continue
                    acc[e.name[:90]] += e.duration_ns
    return {k: v / iters / 1e3 for k, v in acc.items()}

def show(title, ks):
    print(f"  {title}: total {sum(ks.values()):.1f} us")
    for k, v in sorted(ks.items(), key=lambda kv: -kv[1])[:8]:
        print(f"      {v:8.1f}  {k}")

for dtype in (jnp.bfloat16, jnp.float32):
  for name in [a for a in sys.argv[1:] if not a.startswith('--')]:
    L = next(l for l in bench.SUITE if l.name == name)
    n = 64
    x, dw, pw, dwb, pwb = bench.make_args(L, n, dtype, 0)
    ho = -(-L.hw // L.stride)
    g = jnp.ones((n, ho, ho, L.cout), dtype)
    pads = ((1, 1), (1, 1))
    from jax_fcm import _args
    pads = _args.normalize_padding("SAME", L.hw, L.hw, L.k, L.stride)
    ref = lambda x, dw, pw, dwb, pwb: reference.dw_pw_reference(x, dw, dwb, pw, pwb, stride=L.stride, padding=pads,
        dw_activation=L.dw_activation or "none", pw_activation=L.pw_activation or "none", precision=None)
    def train(x, dw, pw, dwb, pwb, g):
        y, vjp = jax.vjp(ref, x, dw, pw, dwb, pwb); return y, vjp(g)
    def dwconv(x, dw): return lax.conv_general_dilated(x, dw, (L.stride,)*2, pads, dimension_numbers=("NHWC","HWIO","NHWC"), feature_group_count=L.c)
    gm = jnp.ones((n, ho, ho, L.c), dtype)
    def dw_bwd(x, dw, gm):
        _, vjp = jax.vjp(dwconv, x, dw); return vjp(gm)
    def dw_bwd_x(x, dw, gm):
        _, vjp = jax.vjp(lambda x: dwconv(x, dw), x); return vjp(gm)
    def dw_bwd_w(x, dw, gm):
        _, vjp = jax.vjp(lambda w: dwconv(x, w), dw); return vjp(gm)
    print(f"== {name} {jnp.dtype(dtype).name} N={n}")
    show("xla train step", kernels(train, (x, dw, pw, dwb, pwb, g)))
    import jax_fcm
    fused = lambda x, dw, pw, dwb, pwb: jax_fcm.dw_pw(x, dw, pw, dwb, pwb, strides=L.stride, padding="SAME", dw_activation=L.dw_activation, pw_activation=L.pw_activation)
    def train_fused(x, dw, pw, dwb, pwb, g):
        y, vjp = jax.vjp(fused, x, dw, pw, dwb, pwb); return y, vjp(g)
    show("jax_fcm train step", kernels(train_fused, (x, dw, pw, dwb, pwb, g)))
    if "--short" in sys.argv: continue
    show("xla dw fwd", kernels(dwconv, (x, dw)))
    show("xla dw bwd x", kernels(dw_bwd_x, (x, dw, gm)))
    show("xla dw bwd w", kernels(dw_bwd_w, (x, dw, gm)))
    try:
        import torch, time
        td = torch.bfloat16 if dtype == jnp.bfloat16 else torch.float32
        tx = torch.randn(n, L.c, L.hw, L.hw, device="cuda", dtype=td).to(memory_format=torch.channels_last).requires_grad_()
        conv = torch.nn.Conv2d(L.c, L.c, L.k, L.stride, L.k // 2, groups=L.c, bias=False).cuda().to(td).to(memory_format=torch.channels_last)
        y = conv(tx); tg = torch.ones_like(y)
        for _ in range(3): torch.autograd.grad(y, (tx, conv.weight), tg, retain_graph=True)
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(20): torch.autograd.grad(y, (tx, conv.weight), tg, retain_graph=True)
        e.record(); torch.cuda.synchronize()
        print(f"  torch cudnn dw bwd (x+w): {s.elapsed_time(e)/20*1e3:.1f} us")
    except Exception as ex:
        print("  torch:", ex)
