"""What the peer benchmarks share (peers.py, flashrnn_peer.py, models.py): the cells' gate
counts, the fp32 eager reference and the error it is compared with, seeded random operands, and
the timer (CUDA events around whole sequences, median over repeats)."""
import functools
import statistics
import time

import torch

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}
CHECK_STEPS = 8
TOL = {torch.float16: 2e-2, torch.bfloat16: 5e-2, torch.float32: 1e-2}  # fp32 may use TF32


class Skip(Exception):
    """Configuration not supported here: print the reason, write no row."""


def log(*a):
    print(*a, flush=True)


def ref_loop(cell, U, W, bh, k):
    """fp32 eager reference in [B, H] layout. U: [>=k, B, GH] (incl. b_ih), W: [GH, H], bh: [GH]."""
    B, H = U.shape[1], W.shape[1]
    h = c = torch.zeros(B, H, device=U.device)
    out = []
    for t in range(k):
        gh = h @ W.t() + bh
        if cell.startswith("rnn"):
            h = (torch.tanh if cell == "rnn_tanh" else torch.relu)(U[t] + gh)
        elif cell == "lstm":
            i, f, g, o = (U[t] + gh).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        else:  # gru
            (ur, uz, un), (hr, hz, hn) = U[t].chunk(3, 1), gh.chunk(3, 1)
            r, z = torch.sigmoid(ur + hr), torch.sigmoid(uz + hz)
            h = (1 - z) * torch.tanh(un + r * hn) + z * h
        out.append(h)
    return torch.stack(out)


def rel_err(y, ref):
    y = y.float()
    err = ((y - ref).abs().max() / ref.abs().max().clamp_min(1e-6)).item()
    return err if torch.isfinite(y).all() else float("inf")


@functools.lru_cache(maxsize=None)
def generator(dev):
    """Own generator: a failed capture can leave the default one stuck in capture mode."""
    return torch.Generator(device=dev).manual_seed(0)


def rnd(*shape, dt, dev):
    return torch.randn(*shape, device=dev, dtype=dt, generator=generator(dev))


def time_fns(fns, T, args, dev):
    """Median over repeats of (elapsed / T) in us, rotating over fns (one per input set)."""
    cuda = dev.type == "cuda"
    for f in fns * args.warmup:
        f()
    if cuda:
        torch.cuda.synchronize()
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for r in range(args.repeats):
        t0 = time.perf_counter()  # the cpu smoke test's clock
        if cuda:
            e0.record()
        fns[r % len(fns)]()
        if cuda:
            e1.record()
            e1.synchronize()
        times.append((e0.elapsed_time(e1) * 1e3 if cuda else (time.perf_counter() - t0) * 1e6) / T)
    return statistics.median(times)
