"""FlashRNN, the peer benchmarked by peers.py --with-flashrnn and --flashrnn-capacity:
FlashRNN 1.0.8's fused CUDA kernel (bf16, one head of size H, dense) for rnn_tanh (its
"elman") and lstm, installed by flashrnn_setup.sh.  Its kernel is JIT-built per (cell, H, B) on
first use (minutes, not timed; `prebuild` builds several in parallel beforehand), and its
capacity search asks FlashRNN's own constraint solver which H it can build on this GPU before
building and running the largest."""
import os
import subprocess
import sys
import time

import torch

from peer_common import CHECK_STEPS, GATES, TOL, Skip, log, ref_loop, rel_err, rnd, time_fns

FUNCTION = {"rnn_tanh": "elman", "lstm": "lstm"}  # FlashRNN's name of each cell
# Where FlashRNN 1.0.8's constraint solver stops accepting H (step 64): the largest H accepted,
# found on a CPU with the H200's properties (132 SMs, 64 K registers, 227 KB shared memory per
# block, 1024 threads per block; B = 4).  Only a starting point for the capacity search, which
# asks the solver on the GPU machine (H and H + step) before relying on it.
SOLVER_HINT = {("NVIDIA H200", "lstm", 4): 2688, ("NVIDIA H200", "rnn_tanh", 4): 5376}


_LOADED = {}


def module():
    """FlashRNN's `flashrnn` function and its module (for the solver-only probe), or Skip."""
    if "fn" not in _LOADED:
        try:
            import importlib
            import flashrnn  # noqa: F401  (installed by flashrnn_setup.sh)
            _LOADED["mod"] = importlib.import_module("flashrnn.flashrnn.flashrnn")
            _LOADED["fn"] = _LOADED["mod"].flashrnn
        except Exception as e:  # noqa: BLE001
            _LOADED["fn"] = None
            _LOADED["why"] = f"{type(e).__name__}: {e}"
            log(f"flashrnn not importable ({_LOADED['why']}); run flashrnn_setup.sh first")
    if _LOADED["fn"] is None:
        raise Skip(f"flashrnn not installed ({_LOADED['why'][:200]})")
    return _LOADED["fn"], _LOADED["mod"]


def inputs(cell, H, B, T, dev, sets=3):
    """FlashRNN's operands for one head of size H: Wx [B, T, G, 1, H] (input pre-activations),
    R [G, 1, H, H] (gate g's pre-activation is R[g, 0] @ h, rows = outputs; the same gate order
    as PyTorch: LSTM i, f, g, o), b [G, 1, H]; bf16, radius about 0.9."""
    G, bf = GATES[cell], torch.bfloat16
    R = rnd(G, 1, H, H, dt=torch.float32, dev=dev) * (0.9 / H ** 0.5)
    b = rnd(G, 1, H, dt=torch.float32, dev=dev) * 0.1
    xs = [(rnd(B, T, G, 1, H, dt=torch.float32, dev=dev) * 0.5).to(bf) for _ in range(sets)]
    return xs, R.to(bf), b.to(bf)


def bench(cell, H, B, T, args, dev):
    """FlashRNN's fused kernel over T steps; checked against ref_loop on the first steps."""
    if dev.type != "cuda":
        raise Skip("flashrnn needs CUDA")
    func = FUNCTION.get(cell)
    if func is None:
        raise Skip(f"flashrnn: cell {cell} not benchmarked (its fused kernel: elman and lstm)")
    fn, _ = module()
    xs, R, b = inputs(cell, H, B, T, dev)
    call = lambda x: fn(x, R, b, function=func, backend="cuda_fused", dtype="bfloat16")  # noqa: E731
    t0 = time.monotonic()
    out = call(xs[0])  # JIT build on first use of (cell, H, B): not timed
    torch.cuda.synchronize()
    built = time.monotonic() - t0
    # out[0]: states [S, B, T, 1, H] (S = 1 for elman, 2 = (h, c) for lstm).
    k, G = min(T, CHECK_STEPS), GATES[cell]
    h = out[0]
    notes = ["cuda_fused", "one head of size H", "no input GEMM", f"first call (JIT build) {built:.0f} s"]
    if tuple(h.shape[1:]) == (B, T, 1, H):
        U = xs[0][:, :k].float().reshape(B, k, G * H).permute(1, 0, 2) + b.float().reshape(1, 1, G * H)
        ref = ref_loop(cell, U, R.float().reshape(G * H, H), torch.zeros(G * H, device=dev), k)
        err = rel_err(h[0, :, :k, 0, :].permute(1, 0, 2), ref)
    else:
        err = float("inf")
        notes.append(f"unexpected output shape {tuple(h.shape)}")
    fns = [lambda x=x: call(x) for x in xs]
    us = time_fns(fns, T, args, dev)
    return us, "bf16", err, err <= TOL[torch.bfloat16], notes


def build(cell, H, B, T):
    """JIT-builds FlashRNN's fused kernel for (cell, H, B) by one untimed call (the build is
    cached in TORCH_EXTENSIONS_DIR); returns the seconds it took.  Run in a child process by
    --flashrnn-prebuild."""
    dev = torch.device("cuda")
    fn, _ = module()
    xs, R, b = inputs(cell, H, B, T, dev, sets=1)
    t0 = time.monotonic()
    fn(xs[0], R, b, function=FUNCTION[cell], backend="cuda_fused", dtype="bfloat16")
    torch.cuda.synchronize()
    return time.monotonic() - t0


def prebuild(items, T, timeout):
    """Builds FlashRNN's kernels for the (cell, H, B) items in parallel child processes (one
    each; the builds are CPU-bound nvcc runs, minutes each) before anything is timed, so the
    timed runs find them in the cache.  Bounded by `timeout` seconds; logs each outcome."""
    procs = []
    for cell, H, B, _ in items:
        if cell not in FUNCTION:
            log(f"prebuild {cell} H={H} B={B}: FlashRNN's fused kernel has no {cell}")
            continue
        code = (f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
                f"import flashrnn_peer; print(round(flashrnn_peer.build({cell!r}, {H}, {B}, {T})))")
        procs.append(((cell, H, B), subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                                     stderr=subprocess.STDOUT, text=True)))
    deadline = time.monotonic() + timeout
    for (cell, H, B), pr in procs:
        try:
            out, _ = pr.communicate(timeout=max(1.0, deadline - time.monotonic()))
            last = (out.strip().splitlines() or [""])[-1]
            log(f"prebuild flashrnn {cell} H={H} B={B}: " +
                (f"built in {last} s" if pr.returncode == 0 else f"failed (exit {pr.returncode}): {out[-1500:]}"))
        except subprocess.TimeoutExpired:
            pr.kill()
            pr.communicate()
            log(f"prebuild flashrnn {cell} H={H} B={B}: not done in {timeout:g} s, killed")


class _SolverAnswer(Exception):
    """Raised by the solver-only probe in place of FlashRNN's build step."""

    def __init__(self, ok, detail=""):
        super().__init__(detail)
        self.ok, self.detail = ok, detail


def solver_accepts(cell, H, B, timeout):
    """Whether FlashRNN's constraint solver finds kernel parameters for (cell, H, B) on this GPU:
    the condition its fused backend checks before building anything.  Runs FlashRNN's own
    module-instance code with its build step replaced by the solver alone (nothing compiled,
    nothing cached); bounded by `timeout` seconds (None: the solver did not answer in time)."""
    import signal
    fn, mod = module()
    from flashrnn.autotune import constrint as cst
    meta = torch.device("meta")
    G = GATES[cell]
    cfg = mod._get_config(torch.empty(B, 1, G, 1, H, device=meta, dtype=torch.bfloat16),
                          torch.empty(G, 1, H, H, device=meta, dtype=torch.bfloat16),
                          torch.empty(G, 1, H, device=meta, dtype=torch.bfloat16),
                          FUNCTION[cell], "cuda_fused", "bfloat16")

    def solve_only(*, constraint_str, value_refinements, **_):
        constr, var = cst.parse_expression(constraint_str)
        sols = cst.solve_constrint(constr, var, value_refinements, 1)
        raise _SolverAnswer(bool(sols))

    def on_alarm(*_):
        raise TimeoutError

    real = mod.load_parametric_and_test_and_bisect
    old = signal.signal(signal.SIGALRM, on_alarm)
    mod.load_parametric_and_test_and_bisect = solve_only
    try:
        signal.alarm(max(1, int(timeout)))
        mod._FlashRNNCUDAFused.instance(cfg)
        return True  # an instance existed already: it was built before
    except _SolverAnswer as a:
        return a.ok
    except TimeoutError:
        return None
    except (ValueError, AssertionError):
        return False
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        mod.load_parametric_and_test_and_bisect = real


def capacity(cell, B, T, args, dev, deadline):
    """The largest H (multiple of --flashrnn-step, at most --flashrnn-max-hidden) FlashRNN's
    fused kernel accepts and runs for (cell, B), and its time there.  Returns
    (H, (us, dtype, err, ok, notes)) or raises Skip/RuntimeError."""
    if dev.type != "cuda":
        raise Skip("flashrnn needs CUDA")
    if cell not in FUNCTION:
        raise Skip(f"flashrnn: cell {cell} not benchmarked (its fused kernel: elman and lstm)")
    step, top = args.flashrnn_step, args.flashrnn_max_hidden // args.flashrnn_step
    probes = []

    def solver(k):
        ans = solver_accepts(cell, k * step, B, args.flashrnn_probe_timeout)
        probes.append(f"{k * step}:{'yes' if ans else 'no' if ans is False else 'timeout'}")
        log(f"    flashrnn solver {cell} H={k * step} B={B}: {probes[-1].split(':')[1]}")
        return bool(ans)

    # Largest k the solver accepts: from the hint for this GPU (then its next step), else
    # doubling up from H = 1024 (where the fused kernel is known to build for both cells); then
    # bisection between the last accepted and the first rejected k (assumes acceptance is
    # monotone in between).
    hint = SOLVER_HINT.get((torch.cuda.get_device_name(dev), cell, B), 0)
    kh = hint // step if hint % step == 0 and 0 < hint // step < top else None
    lo, hi, k = 0, None, kh or max(1, min(top, 1024 // step))
    while hi is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"time budget ran out during the solver search ({' '.join(probes)})")
        if solver(k):
            lo = k
            if k == top:
                break
            k = k + 1 if k == kh else min(top, 2 * k)
        else:
            hi = k
    while hi is not None and hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if solver(mid) else (lo, mid)
    if lo == 0:
        raise RuntimeError(f"FlashRNN's solver accepts no H up to {top * step} ({' '.join(probes)})")
    solver_max = lo * step
    # Build and run the solver's largest H; while that fails, step down by 1, 2, 4, ... steps.
    good, tried, k, delta = None, [], lo, 1
    while k >= 1 and time.monotonic() < deadline:
        try:
            res = bench(cell, k * step, B, T, args, dev)
            tried.append(f"{k * step}: ran")
            good = (k, res)
            break
        except Skip:
            raise
        except Exception as e:  # noqa: BLE001  (build or run failure)
            torch.cuda.synchronize()
            tried.append(f"{k * step}: {type(e).__name__}")
            log(f"    flashrnn {cell} H={k * step} B={B} failed: {type(e).__name__}: {str(e)[:300]}")
            k, delta = k - delta, 2 * delta
    if good is None:
        raise RuntimeError(f"no H built and ran in time (solver accepts up to {solver_max}; "
                           f"tried {'; '.join(tried) or 'none'})")
    k, (us, dto, err, ok, notes) = good
    H = k * step
    notes = notes + [f"capacity: dense-equivalent params {GATES[cell] * H * H} (G*H^2)",
                     f"solver accepts up to H={solver_max} (step {step}; probes {' '.join(probes)})",
                     f"built: {'; '.join(tried)}"]
    if H != solver_max:
        notes.append("largest built H is below the solver's: not exact")
    return H, (us, dto, err, ok, notes)
