"""Shared pieces of the sprnn Python tests.

The CPU tests need only numpy and the built package; tests that need PyTorch skip with
"skipped: no torch", GPU tests with "skipped: no CUDA device" (pytest -rs lists the reasons).
A stand-in module (`StandIn`) has the attributes and parameters of torch.nn.RNN/GRU/LSTM as numpy
arrays, and `oracle` computes PyTorch's equations in float64, independently of sprnn.
"""

import os

import numpy as np
import pytest

import sprnn

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}
MODES = {"rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU", "gru": "GRU", "lstm": "LSTM"}

try:
    import torch  # noqa: F401

    HAVE_TORCH = True
except ImportError:  # CI has no torch: the package's core is tested without it
    HAVE_TORCH = False

HAVE_CUDA = HAVE_TORCH and torch.cuda.is_available() and sprnn.cuda_available()

if os.environ.get("SPRNN_REQUIRE_GPU") == "1" and not HAVE_CUDA:  # bundle/run.sh python-test
    raise pytest.UsageError(
        f"SPRNN_REQUIRE_GPU=1 but no CUDA device through torch and sprnn (torch: {HAVE_TORCH}, "
        f"sprnn.cuda_available(): {sprnn.cuda_available()})"
    )

needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="skipped: no torch")
needs_cuda = pytest.mark.skipif(not HAVE_CUDA, reason="skipped: no CUDA device")


class StandIn:
    """A duck-typed torch.nn.RNN/GRU/LSTM with numpy parameters."""

    def __init__(self, cell, input_size, hidden, layers=1, bidirectional=False, batch_first=False,
                 bias=True, seed=0, scale=None):
        rng = np.random.default_rng(seed)
        self.mode = MODES[cell]
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden, layers
        self.bidirectional, self.batch_first, self.bias = bidirectional, batch_first, bias
        self.proj_size, self.dropout, self.training = 0, 0.0, False
        k = scale if scale is not None else 1.0 / np.sqrt(hidden)
        gh = GATES[cell] * hidden
        d = 2 if bidirectional else 1
        for l in range(layers):
            for s in ["", "_reverse"][:d]:
                i = input_size if l == 0 else d * hidden
                u = lambda *shape: rng.uniform(-k, k, shape).astype(np.float32)  # noqa: E731
                setattr(self, f"weight_ih_l{l}{s}", u(gh, i))
                setattr(self, f"weight_hh_l{l}{s}", u(gh, hidden))
                if bias:
                    setattr(self, f"bias_ih_l{l}{s}", u(gh))
                    setattr(self, f"bias_hh_l{l}{s}", u(gh))


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def oracle(m, x, h0=None, c0=None):
    """PyTorch's RNN/GRU/LSTM equations in float64 for a stand-in `m`; x is (T, B, I) (or
    (B, T, I) with batch_first). Returns (output, h_n, c_n)."""
    cell = {v: k for k, v in MODES.items()}[m.mode]
    x = np.asarray(x, np.float64)
    if m.batch_first:
        x = x.transpose(1, 0, 2)
    t_len, b, _ = x.shape
    hid, d_n = m.hidden_size, 2 if m.bidirectional else 1
    n = m.num_layers * d_n
    h0 = np.zeros((n, b, hid)) if h0 is None else np.asarray(h0, np.float64)
    c0 = np.zeros((n, b, hid)) if c0 is None else np.asarray(c0, np.float64)
    h_n, c_n = np.zeros((n, b, hid)), np.zeros((n, b, hid))
    inp = x
    for l in range(m.num_layers):
        outs = []
        for d in range(d_n):
            s = f"l{l}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(m, "weight_ih_" + s).astype(np.float64), getattr(m, "weight_hh_" + s).astype(np.float64)
            gh_n = w_hh.shape[0]
            b_ih = getattr(m, "bias_ih_" + s).astype(np.float64) if m.bias else np.zeros(gh_n)
            b_hh = getattr(m, "bias_hh_" + s).astype(np.float64) if m.bias else np.zeros(gh_n)
            k = l * d_n + d
            h, c = h0[k].copy(), c0[k].copy()
            out = np.zeros((t_len, b, hid))
            for t in (reversed(range(t_len)) if d else range(t_len)):
                gi = inp[t] @ w_ih.T + b_ih
                gh = h @ w_hh.T + b_hh
                if cell == "rnn_tanh":
                    h = np.tanh(gi + gh)
                elif cell == "rnn_relu":
                    h = np.maximum(gi + gh, 0.0)
                elif cell == "gru":
                    r = _sig(gi[:, :hid] + gh[:, :hid])
                    z = _sig(gi[:, hid:2 * hid] + gh[:, hid:2 * hid])
                    nn_ = np.tanh(gi[:, 2 * hid:] + r * gh[:, 2 * hid:])
                    h = (1 - z) * nn_ + z * h
                else:
                    g = gi + gh
                    i_, f_, g_, o_ = (g[:, j * hid:(j + 1) * hid] for j in range(4))
                    c = _sig(f_) * c + _sig(i_) * np.tanh(g_)
                    h = _sig(o_) * np.tanh(c)
                out[t] = h
            h_n[k], c_n[k] = h, c
            outs.append(out)
        inp = np.concatenate(outs, axis=2)
    if m.batch_first:
        inp = inp.transpose(1, 0, 2)
    return inp, h_n, (c_n if cell == "lstm" else None)
