#!/usr/bin/env python3
"""cuDNN timing of whole recurrent stacks, the peer of sprnn's model examples.

Times torch.nn.LSTM / torch.nn.GRU / torch.nn.RNN (cuDNN) with the same number of layers,
directions, input size, hidden size, batch and sequence length as `cargo run --release -p sprnn
--example nmt` / `--example deepspeech`, in fp16 and fp32, and prints the same one-line form:

  MODEL name=nmt impl=cudnn_fp16 cell=lstm layers=2 directions=1 input=1024 hidden=1024 batch=4
        steps=256 density=1.0 dtype=fp16 layer_us_per_step=9.1,9.0 recurrent_us_per_step=18.1
        model_us_per_step=17.6

- layer_us_per_step: each layer alone, as a one-layer module of its input size (cuDNN runs the
  layer's input GEMM inside the call, so these include it);
- recurrent_us_per_step: their sum;
- model_us_per_step: the whole stack in one module call (sprnn's model_us_per_step also includes
  its input projections).
Timing: CUDA events around each call after warm-up, median over repeats, divided by T.  The
weights are dense (cuDNN has no sparse RNN): density=1.0.

Presets: --model nmt (2-layer LSTM, H 1024, B 4, T 256) and --model deepspeech (3 bidirectional
GRU layers, H 1760, B 4, T 256); every size can be overridden.  --compare FILE reads the MODEL
lines sprnn's examples printed and prints the speedup of sprnn over each cuDNN row of the same
shape.

  python3 bench/peers/models.py --model nmt --hidden 1024,2048
  python3 bench/peers/models.py --model deepspeech --compare sprnn-lines.txt
  python3 bench/peers/models.py --model nmt --device cpu --hidden 64 --steps 8 --repeats 2   # smoke
PyTorch is imported only when something is timed (--help works without it).
"""
import argparse
import os
import sys

PRESETS = {
    "nmt": dict(cell="lstm", layers=2, bidirectional=False, hidden=[1024], batch=4, steps=256),
    "deepspeech": dict(cell="gru", layers=3, bidirectional=True, hidden=[1760], batch=4, steps=256),
}
CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--model", choices=sorted(PRESETS), default="nmt", help="preset (default nmt)")
    p.add_argument("--cell", choices=CELLS, help="override the preset's cell")
    p.add_argument("--layers", type=int, help="override the preset's number of layers")
    p.add_argument("--bidirectional", choices=("0", "1"), help="override: 1 bidirectional, 0 not")
    p.add_argument("--hidden", help="hidden sizes, comma-separated (override)")
    p.add_argument("--input", type=int, default=0, help="input size of the first layer (0: = H)")
    p.add_argument("--batch", type=int, help="override the preset's batch")
    p.add_argument("--steps", type=int, help="override the preset's sequence length")
    p.add_argument("--dtypes", default="fp16,fp32", help="comma-separated: fp16, fp32 (default both)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (smoke test)")
    p.add_argument("--out", help="also append the MODEL lines to this file")
    p.add_argument("--compare", help="file with sprnn's MODEL lines: print sprnn's speedups")
    a = p.parse_args(argv)
    pre = PRESETS[a.model]
    a.cell = a.cell or pre["cell"]
    a.layers = a.layers or pre["layers"]
    a.bidirectional = pre["bidirectional"] if a.bidirectional is None else a.bidirectional == "1"
    a.hidden = [int(h) for h in a.hidden.split(",")] if a.hidden else pre["hidden"]
    a.batch = a.batch or pre["batch"]
    a.steps = a.steps or pre["steps"]
    a.dtypes = [d for d in a.dtypes.split(",") if d]
    bad = [d for d in a.dtypes if d not in ("fp16", "fp32")]
    if bad or a.layers < 1 or a.batch < 1 or a.steps < 1 or min(a.hidden) < 1 or a.repeats < 1:
        p.error(f"bad sizes or dtypes {bad}: layers, batch, steps, hidden, repeats >= 1; dtypes fp16, fp32")
    return a


def module(torch, cell, inp, hidden, layers, bidirectional):
    kw = dict(num_layers=layers, bidirectional=bidirectional)
    if cell.startswith("rnn"):
        return torch.nn.RNN(inp, hidden, nonlinearity=cell[4:], **kw)
    return getattr(torch.nn, cell.upper())(inp, hidden, **kw)


def time_call(fn, steps, args, dev):
    """Median us per step of fn() over args.repeats calls after args.warmup (the peers' timer,
    imported here so that --help needs no PyTorch)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from peer_common import time_fns
    return time_fns([fn], steps, args, dev)


def measure(torch, a, hidden, dtname, dev):
    dt = {"fp16": torch.float16, "fp32": torch.float32}[dtname]
    dirs = 2 if a.bidirectional else 1
    inp = a.input or hidden
    g = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn(a.steps, a.batch, inp, device=dev, dtype=dt, generator=g) * 0.5
    stack = module(torch, a.cell, inp, hidden, a.layers, a.bidirectional).to(device=dev, dtype=dt).eval()
    out, _ = stack(x)  # fails here if the dtype is unsupported on this device
    if not torch.isfinite(out).all():
        raise RuntimeError("non-finite output")
    model_us = time_call(lambda: stack(x), a.steps, a, dev)
    layer_us = []
    for l in range(a.layers):
        li = inp if l == 0 else dirs * hidden
        xl = x if l == 0 else torch.randn(a.steps, a.batch, li, device=dev, dtype=dt, generator=g) * 0.5
        one = module(torch, a.cell, li, hidden, 1, a.bidirectional).to(device=dev, dtype=dt).eval()
        layer_us.append(time_call(lambda: one(xl), a.steps, a, dev))
    return (f"MODEL name={a.model} impl=cudnn_{dtname} cell={a.cell} layers={a.layers} directions={dirs} "
            f"input={inp} hidden={hidden} batch={a.batch} steps={a.steps} density=1.0 dtype={dtname} "
            f"layer_us_per_step={','.join(f'{u:.3f}' for u in layer_us)} "
            f"recurrent_us_per_step={sum(layer_us):.3f} model_us_per_step={model_us:.3f}")


def words(line):
    return dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)


def compare(lines, path):
    """Speedups of the sprnn rows in `path` over the cuDNN `lines` of the same shape."""
    with open(path) as f:
        ours = [words(l) for l in f if l.startswith("MODEL ") and "impl=sprnn" in l]
    key = ("name", "cell", "layers", "directions", "hidden", "batch", "steps")
    for l in lines:
        c = words(l)
        for s in (s for s in ours if all(s.get(k) == c.get(k) for k in key)):
            graph = (f" graph={float(c['model_us_per_step']) / float(s['graph_us_per_step']):.2f}x"
                     if "graph_us_per_step" in s else "")
            print(f"SPEEDUP name={c['name']} hidden={c['hidden']} sprnn={s['impl']} density={s['density']} "
                  f"over={c['impl']} model={float(c['model_us_per_step']) / float(s['model_us_per_step']):.2f}x "
                  f"recurrent={float(c['recurrent_us_per_step']) / float(s['recurrent_us_per_step']):.2f}x{graph}")


def main(argv=None):
    a = parse_args(argv)
    try:
        import torch  # lazily: --help needs no PyTorch
    except ImportError as e:
        sys.exit(f"models.py: timing cuDNN needs PyTorch ({e})")
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("CUDA not available (use --device cpu for a smoke test)")
    torch.backends.cudnn.enabled = True
    torch.set_grad_enabled(False)
    print(f"torch {torch.__version__}, cudnn {torch.backends.cudnn.version() if dev.type == 'cuda' else '-'}, "
          f"device {torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}", flush=True)
    lines = []
    for hidden in a.hidden:
        for dtname in a.dtypes:
            try:
                line = measure(torch, a, hidden, dtname, dev)
            except Exception as e:  # noqa: BLE001  (fp16 on a cpu, out of memory, ...)
                print(f"skip {a.model} H={hidden} {dtname}: {type(e).__name__}: {str(e)[:200]}", flush=True)
                continue
            print(line, flush=True)
            lines.append(line)
    if a.out:
        with open(a.out, "a") as f:
            f.writelines(l + "\n" for l in lines)
    if a.compare:
        compare(lines, a.compare)
    return 0 if lines else 1


if __name__ == "__main__":
    sys.exit(main())
