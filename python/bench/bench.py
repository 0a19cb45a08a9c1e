#!/usr/bin/env python3
"""sprnn from Python against the same module under cuDNN, in one process (needs PyTorch with
CUDA and the sprnn wheel). `bundle/run.sh python-bench ARGS` runs it.

For each (cell, H, B, density) at T steps: a one-layer torch module (input_size = H), pruned with
sprnn.prune_, timed as

- `sprnn_py`: the compiled call `fast(x)` on CUDA tensors (input projection by cuBLAS, the
  persistent kernel, outputs as tensors), fp16 input, CUDA events around each call;
- `cudnn`: the module itself, `module(x)`, fp16 and fp32 (dense: cuDNN has no sparse path);
- `sprnn_py_kernel`: the recurrent kernel alone as the layer measures it (CUDA events around the
  launch, inside the same calls) - what `sprnn-bench` reports as `sprnn`;
- `sprnn_py_layer`: the raw layer call from Python (`GpuLayer.forward` on device pointers), wall
  time on the host: kernel + launch preparation + the Python/Rust boundary;
- `flashrnn` (with --with-flashrnn): FlashRNN's fused persistent kernel on the same (cell, H, B),
  dense bf16, timed by the peer code of `bench/peers/flashrnn_peer.py` (--peers names its
  folder) in this process; its kernels are JIT-built first (minutes, not timed, in parallel);
- `sprnn_rust_layer`: the same call timed on the Rust side (`GpuLayer.time_forward`, a loop of
  `forward_raw` calls): kernel + launch preparation, without the boundary.

µs per step = median over --repeats calls / T. The cost of calling from Python at T = 256 is the
note of the `sprnn_py_layer` rows: (Python call − Rust call) / Rust call, which must stay ≤ 5 %;
the note also gives the call's cost over the kernel alone.
Rows (CSV, bench/results's columns): cell,H,B,density,T,dtype,approach,us_per_step,gpu,driver,date,commit,note
"""

import argparse
import copy
import csv
import datetime
import os
import statistics
import subprocess
import sys
import time

COLUMNS = ["cell", "H", "B", "density", "T", "dtype", "approach", "us_per_step", "gpu", "driver", "date", "commit", "note"]


def ints(s):
    return [int(v) for v in s.split(",")]


def floats(s):
    return [float(v) for v in s.split(",")]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default="rnn_tanh,lstm")
    ap.add_argument("--hidden", type=ints, default=[1152, 2304])
    ap.add_argument("--batch", type=ints, default=[4])
    ap.add_argument("--density", type=floats, default=[0.1, 0.3])
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default=None, help="append rows to this CSV (header when new)")
    ap.add_argument("--with-flashrnn", action="store_true", help="also time FlashRNN's fused kernel (installed by flashrnn_setup.sh)")
    ap.add_argument("--peers", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "peers"),
                    help="folder of the peer code (flashrnn_peer.py); the bundle passes its peers/")
    ap.add_argument("--flashrnn-prebuild-timeout", type=float, default=300.0, help="seconds for the parallel JIT builds")
    ap.add_argument("--commit", default="")
    ap.add_argument("--driver", default=None)
    ap.add_argument("--date", default=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"))
    return ap.parse_args()


def driver_version():
    """The NVIDIA driver's version from nvidia-smi, or "" without it."""
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, check=True).stdout.split("\n")[0].strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


class Bench:
    """One run: its arguments, the device, the rows printed so far, and the timing they share."""

    def __init__(self, args, dev, gpu, driver):
        self.args, self.dev, self.gpu, self.driver = args, dev, gpu, driver
        self.t = args.steps
        self.rows = []

    def row(self, cell, h, b, d, dtype, approach, us, note):
        r = [cell, h, b, d, self.t, dtype, approach, f"{us:.3f}", self.gpu, self.driver, self.args.date, self.args.commit, note]
        self.rows.append(r)
        print(",".join(str(v) for v in r), flush=True)

    def timed(self, fn):
        """The median of --repeats calls of `fn` in ms (CUDA events), after --warmup calls."""
        import torch

        for _ in range(self.args.warmup):
            fn()
        torch.cuda.synchronize()
        ms = []
        for _ in range(self.args.repeats):
            a, z = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            z.record()
            z.synchronize()
            ms.append(a.elapsed_time(z))
        return statistics.median(ms)


def pruned_module(cell, h, d):
    """A one-layer torch module of `cell` (input_size = hidden = `h`, seed 0) pruned to density `d`."""
    import torch

    import sprnn

    torch.manual_seed(0)
    if cell.startswith("rnn"):
        m = torch.nn.RNN(h, h, nonlinearity=cell[4:])
    else:
        m = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](h, h)
    m = m.eval()
    sprnn.prune_(m, d)
    return m


def time_layer_calls(bench, fast, x16, cell, h, b, d):
    """The layer alone, on a prepared U, from Python: the rows sprnn_py_kernel, sprnn_rust_layer
    and sprnn_py_layer."""
    import torch

    args, dev, t = bench.args, bench.dev, bench.t
    layer = fast._gpu[0][0]
    w_ih, b_ih = fast._projection(0, 0, torch.float16)
    u = torch.addmm(b_ih, x16.reshape(t * b, h), w_ih.t()).contiguous()
    hout = torch.empty(t, b, h, device=dev)
    cout = torch.empty(b, h, device=dev)
    stream = torch.cuda.current_stream(dev).cuda_stream
    kernel = []
    wall = []
    for i in range(args.warmup + args.repeats):
        s0 = time.perf_counter()
        k = layer.forward(t, u.data_ptr(), True, 0, 0, hout.data_ptr(), cout.data_ptr(), stream, 0)
        w = time.perf_counter() - s0
        if i >= args.warmup:
            kernel.append(k)
            wall.append(1e3 * w)
    rust = layer.time_forward(t, u.data_ptr(), True, 0, 0, hout.data_ptr(), cout.data_ptr(), stream, args.warmup + args.repeats)
    km, wm = statistics.median(kernel), statistics.median(wall)
    rm = 1e3 * statistics.median(rust[args.warmup:])
    bench.row(cell, h, b, d, "fp16", "sprnn_py_kernel", 1e3 * km / t, "recurrent kernel alone (CUDA events), as sprnn-bench's sprnn")
    bench.row(cell, h, b, d, "fp16", "sprnn_rust_layer", 1e3 * rm / t, "the same layer call timed in Rust (GpuLayer.time_forward), no Python boundary")
    bench.row(cell, h, b, d, "fp16", "sprnn_py_layer", 1e3 * wm / t,
              f"GpuLayer.forward wall time from Python; over the Rust call {100 * (wm - rm) / rm:.1f}%; over the kernel {100 * (wm - km) / km:.1f}%")


def time_flashrnn(bench, flashrnn, cell, h, b):
    """FlashRNN's fused kernel on (cell, H, B), dense: its row, or a note on stderr."""
    try:
        us, fdtype, err, ok, notes = flashrnn.bench(cell, h, b, bench.t, bench.args, bench.dev)
        if ok:
            bench.row(cell, h, b, 1.0, fdtype, "flashrnn", us, "; ".join(notes) + f"; max rel err vs loop {err:.1e}")
        else:
            print(f"# flashrnn {cell} H={h} B={b}: wrong result (rel err {err:.2e}), not reported", file=sys.stderr)
    except flashrnn.Skip as e:
        print(f"# flashrnn {cell} H={h} B={b}: {e}", file=sys.stderr)


def time_point(bench, flashrnn, flashrnn_done, cell, h, b, d):
    """Every row of one (cell, H, B, density): sprnn's compiled call and layer, FlashRNN once per
    (cell, H, B), and the module under cuDNN in fp16 and fp32."""
    import torch

    import sprnn

    dev, t = bench.dev, bench.t
    m = pruned_module(cell, h, d)
    m32 = copy.deepcopy(m).to(dev)
    m16 = m.to(dev).half()
    x16 = torch.randn(t, b, h, device=dev, dtype=torch.float16)
    try:
        fast = sprnn.compile(m16, batch=b)
    except sprnn.DoesNotFit as e:
        print(f"# {cell} H={h} B={b} d={d}: {e}", file=sys.stderr)
        return
    with torch.no_grad():
        ms = bench.timed(lambda: fast(x16))
        bench.row(cell, h, b, d, "fp16", "sprnn_py", 1e3 * ms / t, "compiled call: cuBLAS input projection + persistent kernel; eager")
        time_layer_calls(bench, fast, x16, cell, h, b, d)
        if flashrnn is not None and (cell, h, b) not in flashrnn_done:
            flashrnn_done.add((cell, h, b))
            time_flashrnn(bench, flashrnn, cell, h, b)
        for dtype, mm, xx in [("fp16", m16, x16), ("fp32", m32, x16.float())]:
            ms = bench.timed(lambda: mm(xx))
            bench.row(cell, h, b, 1.0, dtype, "cudnn", 1e3 * ms / t, f"the same module dense (pruned to d={d}, cuDNN ignores zeros); eager module call; cudnn {torch.backends.cudnn.version()}")
    del fast
    torch.cuda.empty_cache()


def write_rows(path, rows):
    """Appends `rows` to the CSV at `path`, with the header when it is new."""
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        if new:
            w.writerow(COLUMNS)
        w.writerows(rows)
    print(f"python-bench: {len(rows)} rows -> {path}", file=sys.stderr)


def main():
    args = parse_args()

    import torch

    import sprnn

    if not torch.cuda.is_available() or not sprnn.cuda_available():
        print("python-bench: no CUDA device (torch or sprnn)", file=sys.stderr)
        return 2
    dev = torch.device("cuda", 0)
    bench = Bench(args, dev, torch.cuda.get_device_name(dev), driver_version() if args.driver is None else args.driver)
    flashrnn = None
    if args.with_flashrnn:
        sys.path.insert(0, os.path.abspath(args.peers))
        import flashrnn_peer
        flashrnn = flashrnn_peer
        items = [(c, h, b, None) for c in args.cells.split(",") for h in args.hidden for b in args.batch]
        flashrnn.prebuild(items, args.steps, args.flashrnn_prebuild_timeout)
    flashrnn_done = set()
    for cell in args.cells.split(","):
        for h in args.hidden:
            for b in args.batch:
                for d in args.density:
                    time_point(bench, flashrnn, flashrnn_done, cell, h, b, d)
    if args.out:
        write_rows(args.out, bench.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
