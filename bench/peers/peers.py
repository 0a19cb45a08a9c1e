#!/usr/bin/env python3
"""Peer benchmark for sprnn: what a user would run instead of a sparse persistent RNN kernel.

Measures microseconds per time step of the *recurrent* part of an RNN (tanh/relu), GRU or LSTM
layer, like sprnn, which takes U = W_ih x + b_ih as input.  The input projection is precomputed
(and b_hh folded into it where the cell allows: RNN and LSTM), except for cuDNN, whose module call
includes its own input GEMM.  Approaches:

  cudnn            torch.nn.RNN/GRU/LSTM (input_size = H), one eager module call on [T,B,H].
  cublas_graph     per-step loop  g = addmm(U[t], h, W_hh^T); h = cell(g), captured in one CUDA
                   graph (one graph per input set) and replayed; dense W_hh.
  cusparse_csr     same loop, W_hh magnitude-pruned per row to the density, torch.sparse_csr_tensor.
  cusparse_bsr     same loop, W_hh block-pruned (--bsr-block), BSR (fp16: PyTorch's Triton kernel).
  semi_structured  same loop, W_hh pruned 2:4 (density 0.5 only), to_sparse_semi_structured.
  flashrnn         FlashRNN 1.0.8's fused CUDA kernel (bf16, one head of size H, dense), cells
                   rnn_tanh (its "elman") and lstm; opt-in (--with-flashrnn), installed by
                   flashrnn_setup.sh.  Its kernel is JIT-built per (cell, H, B) on first use
                   (minutes: not timed), so it has its own time budget (--flashrnn-time-budget);
                   --flashrnn-prebuild CELL:H:B,... builds several in parallel beforehand.
  flashrnn_capacity  with --flashrnn-capacity: for each cell and B, the largest H (a multiple of
                   --flashrnn-step) the fused kernel accepts, timed there.  FlashRNN's own
                   constraint solver decides which H can be built for this GPU; the search asks
                   it alone (no build) to find the largest H it accepts, then builds and runs
                   that H, stepping down while the build or run fails.
  projection       with --projection IxGHxN,...: only the input projection U = x W_ih^T + b_ih,
                   torch.addmm in fp16 (cuBLAS, fp32 accumulation) for N = T*B rows of I inputs
                   and G*H outputs, the peer of `sprnn-bench --projection`.  Rows: cell=projection,
                   H=G*H, B=N, density=1, T=I, us_per_step = microseconds per whole projection.

The loops run in two layouts, W @ h[H,B] and h[B,H] @ W^T (the faster of the two depends on
the approach, the cell and B); by default both are timed and the faster one is written, with the
other's time in the note (--layout hb|bh forces one).
Timing: CUDA events around the whole T-step sequence after warm-up, rotating among 3 random input
sets; us_per_step = median over repeats of elapsed / T.  Every configuration is checked once
against a plain fp32 eager reference (PyTorch's documented cell equations) over the first steps.

--pairs CELL:H[:B[:DENSITY]],... (or @FILE, one a line, as sprnn-bench --capacity --pairs-out
writes) replaces the --cells x --hidden (x --batch) product, e.g. to measure the peers at
sprnn's capacity points; a DENSITY restricts the sparse approaches to it.  When a time budget runs out, the configurations not started are listed at
the end (and counted in the exit message); rows already measured are in the file, flushed
after every row, so a sweep can be split across calls with --cells/--hidden/--pairs subsets.

Run on the GPU machine, e.g.:
  python3 bench/peers/peers.py --out bench/results/DATE-h200.csv
  python3 bench/peers/peers.py --cells rnn_tanh,lstm --hidden 2304 --batch 4 \\
      --density 0.1,0.3 --steps 256,1024 --out bench/results/DATE-h200.csv
FlashRNN's capacity alone (after eval "$(bash bench/peers/flashrnn_setup.sh WHEEL_DIR)"):
  python3 bench/peers/peers.py --cells rnn_tanh,lstm --batch 4 --approaches "" \\
      --flashrnn-capacity --flashrnn-time-budget 500 --out bench/results/DATE-h200.csv
Smoke test of the logic on a CPU:
  python3 bench/peers/peers.py --device cpu --hidden 64 --batch 2 --steps 8 --out /tmp/peers.csv
"""
import argparse
import csv
import contextlib
import datetime
import functools
import itertools
import os
import subprocess
import sys
import time
import traceback

import torch

import flashrnn_peer
from peer_common import CHECK_STEPS, GATES, TOL, Skip, log, ref_loop, rel_err, rnd, time_fns

CELLS = ("rnn_tanh", "rnn_relu", "gru", "lstm")
APPROACHES = ("cudnn", "cublas_graph", "cusparse_csr", "cusparse_bsr", "semi_structured", "flashrnn")
DTYPES = {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}
DTNAME = {v: k for k, v in DTYPES.items()}
COLUMNS = ["cell", "H", "B", "density", "T", "dtype", "approach", "us_per_step",
           "gpu", "driver", "date", "commit", "note"]


# ---------------------------------------------------------------- reference and weights
@functools.lru_cache(maxsize=1)
def base_matrix(cell, H, dev):
    """One random [GH, H] fp32 matrix per (cell, H), reused by all approaches and densities."""
    g = torch.Generator(device=dev).manual_seed(1234 + H + GATES[cell])
    return torch.randn(GATES[cell] * H, H, device=dev, generator=g)


def pruned(cell, H, dev, kind, density, bs):
    """Dense fp32 [GH, H] holding the pruned matrix (zeros where pruned), rows scaled to norm
    0.9 (spectral radius about 0.9 for a random matrix, so the state stays bounded)."""
    W = base_matrix(cell, H, dev)
    GH = W.shape[0]
    normalize_rows = lambda W: W * (0.9 / W.norm(dim=1, keepdim=True).clamp_min(1e-12))  # noqa
    if kind == "dense" or density >= 1.0:
        return normalize_rows(W)
    if kind == "row":  # magnitude pruning, same count per row
        k = max(1, round(density * H))
        idx = W.abs().topk(k, dim=1).indices
        return normalize_rows(torch.zeros_like(W).scatter_(1, idx, W.gather(1, idx)))
    if kind == "2:4":
        Wg = W.view(GH, H // 4, 4)
        idx = Wg.abs().topk(2, dim=2).indices
        return normalize_rows(torch.zeros_like(Wg).scatter_(2, idx, Wg.gather(2, idx)).view(GH, H))
    if kind == "block":
        if GH % bs or H % bs:
            raise Skip(f"H={H} not a multiple of the BSR block {bs}")
        nbr, nbc = GH // bs, H // bs
        Wb = W.view(nbr, bs, nbc, bs)
        k = max(1, round(density * nbc))
        idx = Wb.pow(2).sum(dim=(1, 3)).topk(k, dim=1).indices  # [nbr, k] kept block columns
        mask = torch.zeros(nbr, nbc, device=dev).scatter_(1, idx, 1.0)
        return normalize_rows((Wb * mask[:, None, :, None]).view(GH, H))
    raise ValueError(kind)


# ---------------------------------------------------------------- the step loop
def run_loop(cell, mm, U, Y, h0, c0, bh, ax):
    """T steps; gates along axis ax (hb: h [H,B], ax=0; bh: h [B,H], ax=1).  U: [T, GH, B] or
    [T, B, GH] (b_ih, and b_hh for RNN/LSTM, folded in); Y: [T, H, B] or [T, B, H] gets every h_t."""
    H = h0.shape[ax]
    s_ = (lambda x, a, b: x[a:b]) if ax == 0 else (lambda x, a, b: x[:, a:b])
    h, c = h0, c0
    for t in range(U.shape[0]):
        Ut, yt = U[t], Y[t]
        if cell == "rnn_tanh":
            torch.tanh(mm(h, Ut), out=yt)
        elif cell == "rnn_relu":
            torch.clamp_min(mm(h, Ut), 0, out=yt)
        elif cell == "lstm":  # i, f, g, o
            g = mm(h, Ut)
            s = torch.sigmoid(g)
            c = torch.addcmul(s_(s, H, 2 * H) * c, s_(s, 0, H), torch.tanh(s_(g, 2 * H, 3 * H)))
            torch.mul(s_(s, 3 * H, 4 * H), torch.tanh(c), out=yt)
        else:  # gru: r, z, n;  n = tanh(U_n + r * (W_hn h + b_hn))
            gh = mm(h, bh)
            rz = torch.sigmoid(s_(Ut, 0, 2 * H) + s_(gh, 0, 2 * H))
            n = torch.tanh(torch.addcmul(s_(Ut, 2 * H, 3 * H), s_(rz, 0, H), s_(gh, 2 * H, 3 * H)))
            torch.lerp(n, h, s_(rz, H, 2 * H), out=yt)
        h = yt
    return Y


def capture(fn, tries=2):
    """Capture fn() into a CUDA graph after a warm-up on a side stream.  Retried once: capturing
    the semi-structured product failed intermittently on the H200 (stream capture invalidated)."""
    for attempt in range(tries):
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            fn()
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(g):
                fn()
            return g
        except Exception:  # noqa: BLE001
            # A failed capture leaves the default CUDA generator stuck; a trivial one resets it.
            x = torch.zeros(1, device="cuda")
            with contextlib.suppress(Exception), torch.cuda.graph(torch.cuda.CUDAGraph()):
                x.add_(1)
            if attempt == tries - 1:
                raise


def make_weight(kind, Wd, dt, bs):
    """The operand the loop multiplies with, and the matching dense fp32 matrix for the check."""
    Wq = Wd.to(dt).contiguous()
    if kind == "cusparse_csr":
        return Wq.to_sparse_csr(), Wq.float()
    if kind == "cusparse_bsr":
        return Wq.to_sparse_bsr((bs, bs)), Wq.float()
    if kind == "semi_structured":
        return torch.sparse.to_sparse_semi_structured(Wq), Wq.float()
    return Wq, Wq.float()


def buffers(cell, H, B, T, dt, ax, dev, sets=3):
    """Input sets U (b_ih, and b_hh for RNN/LSTM, folded in), output Y, h0, c0, GRU's b_hh."""
    sh = (lambda *d: d) if ax == 0 else (lambda *d: d[::-1])  # (rows, cols) of layout hb
    GH = GATES[cell] * H
    bh = rnd(GH, dt=dt, dev=dev) * (0.1 if cell == "gru" else 0.0)
    h0 = torch.zeros(*sh(H, B), device=dev, dtype=dt)
    Us = [rnd(T, *sh(GH, B), dt=dt, dev=dev) * 0.5 for _ in range(sets)]
    return Us, torch.empty(T, *sh(H, B), device=dev, dtype=dt), h0, h0.clone(), \
        (bh[:, None] if ax == 0 else bh)


def find_product(kind, cell, Wd, dt, H, B, ax, args, dev):
    """First (dtype, product) that runs: dt (CSR: else fp32); addmm, else matmul + add."""
    tries = [dt] + ([torch.float32] if kind == "cusparse_csr" and dt != torch.float32 else [])
    errs = []
    for dtu in tries:
        try:
            W, Wref = make_weight(kind, Wd, dtu, args.bsr_block)
        except Exception as e:  # noqa: BLE001
            errs.append(e)
            continue
        Wt = W.t() if ax else W
        mul = (lambda h: Wt @ h) if ax == 0 else (lambda h: h @ Wt)
        addmm = (lambda h, a: torch.addmm(a, Wt, h)) if ax == 0 else (lambda h, a: torch.addmm(a, h, Wt))
        for mname, mm in (("addmm", addmm), ("mm+add", lambda h, a: torch.add(mul(h), a))):
            try:
                Us, Y, h0, c0, bh = buffers(cell, H, B, 2, dtu, ax, dev, sets=1)
                run_loop(cell, mm, Us[0], Y, h0, c0, bh, ax)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                return dtu, Wref, mname, mm, errs
            except Exception as e:  # noqa: BLE001
                errs.append(e)
    e = errs[-1]
    raise Skip(f"{kind} unsupported for {DTNAME[dt]} on {dev.type}: "
               f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")


LAYOUTS = {"hb": "W@h[H,B]", "bh": "h[B,H]@W^T"}
PRUNE = {"cublas_graph": "dense", "cusparse_csr": "row", "cusparse_bsr": "block",
         "semi_structured": "2:4"}


def bench_loop(kind, cell, H, B, T, dt, density, args, dev):
    # --layout best: time both layouts, keep the faster passing one (which wins depends on
    # approach, cell and B: on the H200, dense B=4 favours bh 7.9 vs 12.8 us, B=64 GRU hb).
    if dev.type != "cuda" and kind != "cublas_graph":
        raise Skip(f"{kind} needs CUDA (device={dev.type})")
    res, why, skip = [], None, None
    for lay in (("hb", "bh") if args.layout == "best" else (args.layout,)):
        try:
            res.append(bench_layout(kind, cell, H, B, T, dt, density, args, dev, lay))
        except Skip as e:
            skip, why = e, f"{LAYOUTS[lay]} unsupported"
            log(f"    layout {lay}: {e}")
        except Exception as e:  # noqa: BLE001  (e.g. OOM in one layout: keep the other)
            why = f"{LAYOUTS[lay]} failed: {type(e).__name__}"
            log(f"    layout {lay}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    if not res:
        raise skip if skip is not None and why.endswith("unsupported") else RuntimeError(why)
    best = min(res, key=lambda r: (not r[3], r[0]))
    others = [f"{LAYOUTS[r[5]]}: {r[0]:.3f}{'' if 'cuda graph' in r[4] else ' eager'}"
              f"{'' if r[3] else ' CHECK FAILED'}" for r in res if r is not best]
    return best[:4] + (best[4] + [f"other layout {o}" for o in others] + ([why] if why else []),)


def bench_layout(kind, cell, H, B, T, dt, density, args, dev, layout):
    ax = 0 if layout == "hb" else 1
    notes = [f"layout {LAYOUTS[layout]}"]
    Wd = pruned(cell, H, dev, PRUNE[kind], density, args.bsr_block)
    dtu, Wref, mname, mm, errs = find_product(kind, cell, Wd, dt, H, B, ax, args, dev)
    if dtu != dt:
        notes.append(f"{DTNAME[dt]} unsupported ({type(errs[0]).__name__}), ran {DTNAME[dtu]}")
    Us, Y, h0, c0, bh = buffers(cell, H, B, T, dtu, ax, dev)
    notes.append(f"product={mname}")
    if kind == "cusparse_bsr":
        notes.append(f"block={args.bsr_block}{'' if dtu == torch.float32 else ', Triton kernel'}")
    if kind != "cublas_graph":
        notes.append(f"nnz={int((Wref != 0).sum())}")
    fns = loops = [lambda U=U: run_loop(cell, mm, U, Y, h0, c0, bh, ax) for U in Us]
    if dev.type == "cuda":
        try:
            graphs = [capture(f) for f in loops]
            fns = [g.replay for g in graphs]
            notes.append("cuda graph")
        except Exception as e:  # noqa: BLE001
            torch.cuda.synchronize()
            notes.append(f"eager (capture failed: {type(e).__name__})")
            log(f"    capture failed ({kind}, {layout}), timing eager: {type(e).__name__}: {e}")
    else:
        notes.append("eager (no graph on cpu)")
    # Check the timed path itself: run input set 0, compare the first steps.
    fns[0]()
    k = min(T, CHECK_STEPS)
    tr = (lambda x: x.permute(0, 2, 1)) if ax == 0 else (lambda x: x)
    ref = ref_loop(cell, tr(Us[0][:k].float()), Wref, bh.float().flatten(), k)
    err = rel_err(tr(Y[:k]), ref)
    us = time_fns(fns, T, args, dev)
    return us, DTNAME[dtu], err, err <= TOL[dtu], notes, layout


def bench_cudnn(cell, H, B, T, dt, args, dev):
    torch.backends.cudnn.enabled = True
    notes = ["includes input GEMM (input_size=H)", "eager module call",
             f"cudnn {torch.backends.cudnn.version()}" if dev.type == "cuda" else "cpu: no cuDNN"]
    mod = (torch.nn.RNN(H, H, nonlinearity=cell[4:]) if cell.startswith("rnn")
           else getattr(torch.nn, cell.upper())(H, H)).to(device=dev, dtype=dt).eval()
    xs = [rnd(T, B, H, dt=dt, dev=dev) * 0.5 for _ in range(3)]
    h0 = torch.zeros(1, B, H, device=dev, dtype=dt)
    hx = (h0, torch.zeros_like(h0)) if cell == "lstm" else h0
    out, _ = mod(xs[0], hx)
    k = min(T, CHECK_STEPS)
    p = {n: t.float() for n, t in mod.named_parameters()}
    U = xs[0][:k].float() @ p["weight_ih_l0"].t() + p["bias_ih_l0"]
    ref = ref_loop(cell, U, p["weight_hh_l0"], p["bias_hh_l0"], k)
    err = rel_err(out[:k], ref)
    fns = [lambda x=x: mod(x, hx) for x in xs]
    us = time_fns(fns, T, args, dev)
    return us, DTNAME[dt], err, err <= TOL[dt], notes


def bench_projection(I, GH, N, args, dev):
    """us per projection U = x @ W^T + b (torch.addmm; fp16 on CUDA, fp32 on the cpu smoke test),
    CUDA-event timed like the loops (time_fns with T = 1), checked against fp32 on 4 rows."""
    dt = torch.float16 if dev.type == "cuda" else torch.float32
    W, b = rnd(GH, I, dt=dt, dev=dev), rnd(GH, dt=dt, dev=dev)
    xs = [rnd(N, I, dt=dt, dev=dev) for _ in range(3)]
    out = torch.empty(N, GH, device=dev, dtype=dt)
    fns = [lambda x=x: torch.addmm(b, x, W.t(), out=out) for x in xs]
    fns[0]()
    ref = xs[0][:4].float() @ W.float().t() + b.float()
    err = rel_err(out[:4], ref)
    us = time_fns(fns, 1, args, dev)
    tflops = 2.0 * I * GH * N / (us * 1e-6) / 1e12
    return us, DTNAME[dt], err, err <= TOL[dt], [f"I={I}", f"GH={GH}", f"N={N}", "torch.addmm",
                                                  f"{tflops:.1f} TFLOP/s"]


# ---------------------------------------------------------------- driver
def sh(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=True).stdout
        return (out.strip().splitlines() or [""])[0].strip()
    except Exception:  # noqa: BLE001  (no nvidia-smi, no git checkout)
        return ""


def parse_args(argv=None):
    lst = lambda f: (lambda s: [f(x) for x in s.split(",") if x.strip()])  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", type=lst(str), default=list(CELLS))
    p.add_argument("--hidden", type=lst(int), default=[1152, 2304, 4608, 5760])
    p.add_argument("--batch", type=lst(int), default=[1, 4, 16, 64])
    p.add_argument("--density", type=lst(float), default=[0.01, 0.05, 0.1, 0.2, 0.3, 0.5])
    p.add_argument("--steps", type=lst(int), default=[256])
    p.add_argument("--approaches", type=lst(str), default=list(APPROACHES[:-1]))
    p.add_argument("--dtypes", type=lst(str), default=["fp16", "fp32"],
                   help="dtypes for cudnn (default fp16,fp32)")
    p.add_argument("--other-dtypes", type=lst(str), default=["fp16"],
                   help="dtypes for the loop approaches (default fp16)")
    p.add_argument("--bsr-block", type=int, default=32)
    p.add_argument("--layout", choices=("best", "hb", "bh"), default="best",
                   help="loop approaches: hb = W @ h[H,B], bh = h[B,H] @ W^T, best = time both "
                        "and keep the faster")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", required=True)
    for o in ("--gpu-name", "--driver", "--date", "--commit"):  # default: read from the machine
        p.add_argument(o, default=None)
    p.add_argument("--time-budget", type=float, default=240.0,
                   help="seconds for every approach but flashrnn; configurations not started "
                        "in time are listed at the end")
    p.add_argument("--with-flashrnn", action="store_true",
                   help="add the flashrnn approach (FlashRNN installed by flashrnn_setup.sh)")
    p.add_argument("--flashrnn-time-budget", type=float, default=400.0,
                   help="seconds for the flashrnn rows (its first call per configuration "
                        "JIT-builds a kernel)")
    p.add_argument("--flashrnn-capacity", action="store_true",
                   help="also search FlashRNN's capacity (largest H) per cell and B: rows "
                        "flashrnn_capacity")
    p.add_argument("--flashrnn-step", type=int, default=64)
    p.add_argument("--flashrnn-max-hidden", type=int, default=8192)
    p.add_argument("--flashrnn-prebuild", default=None,
                   help="CELL:H:B,... (or @FILE): JIT-build FlashRNN's kernels for these "
                        "configurations in parallel child processes before timing anything "
                        "(each build takes minutes; in parallel they take about one)")
    p.add_argument("--flashrnn-prebuild-timeout", type=float, default=400.0)
    p.add_argument("--flashrnn-probe-timeout", type=float, default=120.0,
                   help="seconds for one answer of FlashRNN's constraint solver")
    p.add_argument("--pairs", default=None,
                   help="CELL:H[:B[:DENSITY]],... or @FILE (one a line): replaces --cells x "
                        "--hidden (x --batch); DENSITY: the sparse approaches' only density")
    p.add_argument("--device", default="cuda")
    p.add_argument("--projection", type=lst(str), default=[],
                   help="time only the input projection for these shapes IxGHxN (input size, "
                        "G*H outputs, T*B rows), e.g. 1024x4096x1024, as approach 'projection'")
    a = p.parse_args(argv)
    for s in a.projection:
        parts = s.split("x")
        if len(parts) != 3 or not all(x.isdigit() and int(x) > 0 for x in parts):
            p.error(f"--projection {s}: expected three positive sizes IxGHxN, e.g. 1024x4096x1024")
    if a.with_flashrnn and "flashrnn" not in a.approaches:
        a.approaches.append("flashrnn")
    a.pairs = parse_pairs(p, a.pairs, a.batch) if a.pairs else None
    a.flashrnn_prebuild = parse_pairs(p, a.flashrnn_prebuild, a.batch) if a.flashrnn_prebuild else []
    if a.pairs:
        a.cells = sorted({t[0] for t in a.pairs}, key=CELLS.index)
    for name, vals, ok in (("cell", a.cells, CELLS), ("approach", a.approaches, APPROACHES),
                           ("dtype", a.dtypes + a.other_dtypes, DTYPES)):
        bad = [v for v in vals if v not in ok]
        if bad:
            p.error(f"unknown {name}(s) {bad}; choose from {list(ok)}")
    return a


def parse_pairs(p, spec, batches):
    """CELL:H[:B[:D]] items (comma-separated, or one a line in @FILE) as (cell, H, B, D)
    tuples; an item without B stands for every --batch; D (a density) restricts the sparse
    approaches to that density (None: every --density)."""
    if spec.startswith("@"):
        try:
            with open(spec[1:]) as f:
                items = [x.strip() for x in f.read().replace(",", "\n").splitlines()]
        except OSError as e:
            p.error(f"--pairs {spec}: {e}")
    else:
        items = [x.strip() for x in spec.split(",")]
    out = []
    for it in filter(None, items):
        parts = it.split(":")
        try:
            if len(parts) not in (2, 3, 4) or parts[0] not in CELLS:
                raise ValueError
            bs = [int(parts[2])] if len(parts) >= 3 else batches
            d = float(parts[3]) if len(parts) == 4 else None
            out += [(parts[0], int(parts[1]), b, d) for b in bs]
        except ValueError:
            p.error(f"--pairs: bad item {it!r} (CELL:H[:B[:DENSITY]], cell one of {list(CELLS)})")
    return list(dict.fromkeys(out))


def configs(a):
    """(cell, H, B, T, approach, dtype, density) in sweep order."""
    tuples = a.pairs or [(c, h, b, None) for c, h, b in itertools.product(a.cells, a.hidden, a.batch)]
    for (cell, H, B, pd), T, ap in itertools.product(tuples, a.steps, a.approaches):
        dts = ["bf16"] if ap == "flashrnn" else a.dtypes if ap == "cudnn" else a.other_dtypes
        dens = [1.0] if ap in ("cudnn", "cublas_graph", "flashrnn") else [pd] if pd else a.density
        if ap == "semi_structured":  # 2:4 is density 0.5 only
            dens = [x for x in dens if abs(x - 0.5) < 1e-9]
        for dt, d in itertools.product(dts, dens):
            yield cell, H, B, T, ap, dt, d


def machine_meta(a, dev):
    """The gpu, driver, date and commit columns: as given, else read from the machine."""
    here = os.path.dirname(os.path.abspath(__file__))
    return {
        "gpu": a.gpu_name or (torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"),
        "driver": a.driver if a.driver is not None else
        sh(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]),
        "date": a.date or datetime.date.today().isoformat(),
        "commit": a.commit if a.commit is not None else
        sh(["git", "-C", here, "rev-parse", "--short", "HEAD"]),
    }


class Rows:
    """The rows file, appended to and flushed after every row (with the header when it is new),
    and the rows this run wrote."""

    def __init__(self, path, meta):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        self.meta, self.done = meta, []
        self.fout = open(path, "a", newline="")
        self.w = csv.writer(self.fout, lineterminator="\n")  # the rows files use LF, like sprnn-bench
        if new:
            self.w.writerow(COLUMNS)

    def emit(self, cell, H, B, T, d, dto, ap, us, err, ok, notes):
        if err == err:  # not NaN: checked
            notes.append(f"max rel err {err:.1e}")
        if not ok:
            notes.insert(0, "CHECK FAILED")
        meta = self.meta
        row = [cell, H, B, str(float(d)), T, dto, ap, f"{us:.3f}", meta["gpu"], meta["driver"],
               meta["date"], meta["commit"], "; ".join(notes)]
        self.w.writerow(row)
        self.fout.flush()
        self.done.append(row)
        log(f"{'ok  ' if ok else 'FAIL'}  {cell} H={H} B={B} T={T} {ap}: {us:9.3f} us/step  "
            f"({'; '.join(notes)})")

    def close(self):
        self.fout.close()


class Budget:
    """Seconds spent against the two time budgets, "flashrnn" and "other", and the
    configurations not started because one ran out."""

    def __init__(self, a):
        self.limit = {"flashrnn": a.flashrnn_time_budget, "other": a.time_budget}
        self.spent = {"flashrnn": 0.0, "other": 0.0}
        self.skipped = []

    def over(self, which, tag):
        """Whether `which` is spent; then `tag` is listed as not started."""
        if self.spent[which] > self.limit[which]:
            self.skipped.append(tag)
            return True
        return False


def run_job(job, a, dev, rows, budget):
    """One configuration of the sweep (or one projection shape): timed, checked, written."""
    if job[0] == "projection":
        I, GH, N = job[1:]
        us, dto, err, ok, notes = bench_projection(I, GH, N, a, dev)
        rows.emit("projection", GH, N, I, 1.0, dto, "projection", us, err, ok, notes)
        return
    cell, H, B, T, ap, dts, d = job
    tag = f"{cell} H={H} B={B} T={T} {ap} {dts} d={d}"
    which = "flashrnn" if ap == "flashrnn" else "other"
    if budget.over(which, tag):
        return
    dt = DTYPES[dts]
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    t_conf = time.monotonic()
    try:
        us, dto, err, ok, notes = (
            bench_cudnn(cell, H, B, T, dt, a, dev) if ap == "cudnn" else
            flashrnn_peer.bench(cell, H, B, T, a, dev) if ap == "flashrnn" else
            bench_loop(ap, cell, H, B, T, dt, d, a, dev))
    except Skip as e:
        log(f"skip  {tag}: {e}")
        return
    except Exception as e:  # noqa: BLE001  (incl. torch.cuda.OutOfMemoryError)
        oom = isinstance(e, torch.cuda.OutOfMemoryError)
        log(f"{'OOM  ' if oom else 'ERROR'} {tag}: {type(e).__name__}: {str(e)[:2000]}")
        if not oom:
            traceback.print_exc(limit=3, file=sys.stdout)
        sys.stdout.flush()
        return
    finally:
        budget.spent[which] += time.monotonic() - t_conf
    rows.emit(cell, H, B, T, d, dto, ap, us, err, ok, notes)


def flashrnn_capacities(a, dev, rows, budget):
    """--flashrnn-capacity: FlashRNN's largest H per cell, B and T, within its time budget."""
    for cell, B, T in itertools.product(a.cells, a.batch, a.steps):
        tag = f"{cell} B={B} T={T} flashrnn_capacity"
        if cell not in flashrnn_peer.FUNCTION:
            log(f"skip  {tag}: FlashRNN's fused kernel has no {cell}")
            continue
        if budget.over("flashrnn", tag):
            continue
        t_conf = time.monotonic()
        deadline = t_conf + budget.limit["flashrnn"] - budget.spent["flashrnn"]
        try:
            H, (us, dto, err, ok, notes) = flashrnn_peer.capacity(cell, B, T, a, dev, deadline)
            rows.emit(cell, H, B, T, 1.0, dto, "flashrnn_capacity", us, err, ok, notes)
        except Skip as e:
            log(f"skip  {tag}: {e}")
        except Exception as e:  # noqa: BLE001
            log(f"ERROR {tag}: {type(e).__name__}: {str(e)[:2000]}")
        finally:
            budget.spent["flashrnn"] += time.monotonic() - t_conf


def summary(a, rows, budget, t_start):
    """The table of this run's rows, the configurations a budget left out, the total."""
    log("\ncell      H     B    density  T      approach         dtype  us/step")
    for r in rows.done:
        log(f"{r[0]:<9} {r[1]:<5} {r[2]:<4} {r[3]:<8} {r[4]:<6} {r[6]:<16} {r[5]:<6} {r[7]:>9}"
            f"{'  CHECK FAILED' if r[12].startswith('CHECK FAILED') else ''}")
    if budget.skipped:
        log(f"\ntime budget exceeded (other approaches {a.time_budget:g} s, spent "
            f"{budget.spent['other']:.0f}; flashrnn {a.flashrnn_time_budget:g} s, spent "
            f"{budget.spent['flashrnn']:.0f}); {len(budget.skipped)} configurations not started:\n  "
            + "\n  ".join(budget.skipped))
    log(f"\n{len(rows.done)} rows appended to {a.out} in {time.monotonic() - t_start:.0f} s")


def main(argv=None):
    a = parse_args(argv)
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("CUDA not available (use --device cpu for a smoke test)")
    meta = machine_meta(a, dev)
    log(f"torch {torch.__version__}, cuda {torch.version.cuda}, cudnn "
        f"{torch.backends.cudnn.version() if dev.type == 'cuda' else '-'}, {meta}")
    torch.manual_seed(0)
    rows = Rows(a.out, meta)
    if "semi_structured" in a.approaches and not any(abs(x - 0.5) < 1e-9 for x in a.density):
        log("semi_structured: skipped, 2:4 sparsity needs density 0.5 in --density")
    t_start, budget = time.monotonic(), Budget(a)
    torch.set_grad_enabled(False)
    if a.flashrnn_prebuild:
        if dev.type != "cuda":
            log("prebuild: flashrnn needs CUDA; nothing built")
        else:
            flashrnn_peer.prebuild(a.flashrnn_prebuild, max(a.steps), a.flashrnn_prebuild_timeout)
    jobs = ([("projection", *map(int, s.split("x"))) for s in a.projection] if a.projection
            else configs(a))
    for job in jobs:
        run_job(job, a, dev, rows, budget)
    if a.flashrnn_capacity:
        flashrnn_capacities(a, dev, rows, budget)
    rows.close()
    summary(a, rows, budget, t_start)


if __name__ == "__main__":
    main()
