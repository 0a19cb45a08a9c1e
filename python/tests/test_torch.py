"""Against PyTorch itself: CPU tensors through the CPU reference (needs torch), CUDA tensors
through the persistent kernel (needs torch and a CUDA device; run by `bundle/run.sh
python-test` on the GPU machine)."""

import copy

import numpy as np
import pytest

import sprnn
from conftest import HAVE_TORCH, needs_cuda, needs_torch

if HAVE_TORCH:
    import torch

CELLS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]
# sprnn keeps W_hh and h in fp16 (f32 sums and cell math): tolerances against the module.
ATOL = {"float32": 2e-2, "float16": 3e-2, "bfloat16": 8e-2}


def module(cell, input_size, hidden, seed=0, **kw):
    torch.manual_seed(seed)
    if cell.startswith("rnn"):
        m = torch.nn.RNN(input_size, hidden, nonlinearity=cell[4:], **kw)
    else:
        m = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](input_size, hidden, **kw)
    return m.eval()


def run(f, cell, x, hx=None):
    if cell == "lstm":
        out, (h, c) = f(x, hx)
        return out, h, c
    out, h = f(x, hx)
    return out, h, None


def state(cell, n, b, hidden, **kw):
    h0 = torch.randn(n, b, hidden, **kw) * 0.5
    return (h0, torch.randn(n, b, hidden, **kw) * 0.5) if cell == "lstm" else h0


@needs_torch
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidir"])
def test_cpu_tensors_match_the_module(cell, bidirectional):
    m = module(cell, 6, 16, num_layers=2, bidirectional=bidirectional, batch_first=True)
    sprnn.prune_(m, 0.3)
    assert float((m.weight_hh_l1 == 0).float().mean()) == pytest.approx(0.7, abs=0.01)
    x = torch.randn(3, 9, 6)
    hx = state(cell, 2 * (2 if bidirectional else 1), 3, 16)
    with torch.no_grad():
        want = run(m, cell, x, hx)
    got = run(sprnn.compile(m, batch=3), cell, x, hx)
    for g, w in zip(got, want):
        if w is not None:
            assert isinstance(g, torch.Tensor) and g.dtype == w.dtype and g.shape == w.shape
            torch.testing.assert_close(g, w, atol=1e-4, rtol=0)


@needs_torch
def test_torch_module_refusals():
    with pytest.raises(sprnn.InvalidInput, match="proj_size"):
        sprnn.compile(torch.nn.LSTM(4, 8, proj_size=2), batch=1)
    with pytest.raises(sprnn.InvalidInput, match="dropout"):
        sprnn.compile(torch.nn.GRU(4, 8, num_layers=2, dropout=0.2).train(), batch=1)
    p = sprnn.plan(torch.nn.LSTM(4, 8), 2)
    assert p["fits"] and p["layers"][0]["nnz"] == 4 * 8 * 8


# -- GPU ------------------------------------------------------------------------------------


def gpu_case(cell, layers, bidirectional, batch_first, dtype, with_state, contiguous, b=4, t=24, hidden=64, inp=32):
    m = module(cell, inp, hidden, seed=1, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    sprnn.prune_(m, 0.3)
    m = m.cuda().to(dtype)
    x = torch.randn((b, t, inp) if batch_first else (t, b, inp), device="cuda").to(dtype)
    if not contiguous:  # a strided view: every other feature of a wider tensor
        x = torch.randn(*x.shape[:2], 2 * inp, device="cuda").to(dtype)[..., ::2]
        assert not x.is_contiguous()
    n = layers * (2 if bidirectional else 1)
    hx = state(cell, n, b, hidden, device="cuda", dtype=dtype) if with_state else None
    with torch.no_grad():
        want = run(m, cell, x, hx)
    got = run(sprnn.compile(m, batch=b), cell, x, hx)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
            continue
        assert g.is_cuda and g.dtype == dtype and g.shape == w.shape
        torch.testing.assert_close(g.float(), w.float(), atol=ATOL[str(dtype).split(".")[1]], rtol=0)


@needs_cuda
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "layers,bidirectional,batch_first,with_state",
    [(1, False, False, False), (1, False, True, True), (2, False, False, True), (2, True, False, False), (2, True, True, True)],
    ids=["L1", "L1-bf-h0", "L2-h0", "L2-bidir", "L2-bidir-bf-h0"],
)
def test_gpu_matches_the_module(cell, layers, bidirectional, batch_first, with_state):
    gpu_case(cell, layers, bidirectional, batch_first, torch.float32, with_state, True)


@needs_cuda
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_gpu_half_precision_inputs(cell, dtype):
    gpu_case(cell, 2, True, False, getattr(torch, dtype), True, True)


@needs_cuda
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gpu_non_contiguous_input(cell):
    gpu_case(cell, 1, False, True, torch.float32, True, False)


@needs_cuda
def test_gpu_writes_the_output_in_place():
    m = module("lstm", 32, 64, seed=2)
    sprnn.prune_(m, 0.2)
    m = m.cuda()
    x = torch.randn(16, 4, 32, device="cuda")
    out = torch.full((16, 4, 64), float("nan"), device="cuda")
    ptr = out.data_ptr()
    got, _ = sprnn.compile(m, batch=4)(x, out=out)
    assert got is out and got.data_ptr() == ptr
    with torch.no_grad():
        want, _ = m(x)
    torch.testing.assert_close(out, want, atol=2e-2, rtol=0)


@needs_cuda
def test_gpu_runs_on_the_current_stream():
    m = module("rnn_tanh", 32, 256, seed=3)
    sprnn.prune_(m, 0.1)
    m = m.cuda()
    fast = sprnn.compile(m, batch=4)
    x = torch.randn(64, 4, 32, device="cuda")
    with torch.no_grad():
        want, _ = m(x)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        late = torch.full_like(x, float("nan"))
        torch.cuda._sleep(200_000_000)  # keeps `s` busy for a while (GPU cycles)
        late.copy_(x)  # the input is only complete once `s` gets here
        got, _ = fast(late)
        assert torch.cuda.current_stream() == s
    # Had sprnn run on another stream without waiting for `s`, it would have read NaN.
    torch.cuda.synchronize()
    torch.testing.assert_close(got, want, atol=2e-2, rtol=0)


@needs_cuda
def test_gpu_streaming_equals_one_call_and_slots_reset():
    m = module("lstm", 16, 64, seed=4, num_layers=2)
    sprnn.prune_(m, 0.3)
    m = m.cuda()
    fast = sprnn.compile(m, batch=2)
    x = torch.randn(40, 2, 16, device="cuda")
    whole, _ = fast(x)
    s = fast.stream()
    parts = torch.cat([s(x[a:b]) for a, b in [(0, 7), (7, 8), (8, 40)]])
    torch.testing.assert_close(parts, whole, atol=1e-6, rtol=0)
    s.reset(0)
    out = s(x[:5])
    fresh, _ = fast(x[:5])
    # Slot 0 starts afresh; its steps are numbered as the stream's (the last bit of the fp16
    # exchange differs from a new call's), hence the tolerance.
    torch.testing.assert_close(out[:, 0], fresh[:, 0], atol=5e-3, rtol=0)


@needs_cuda
def test_gpu_does_not_fit_says_what_would():
    m = module("lstm", 8, 4096, seed=5).cuda()  # dense: far over the register file
    with pytest.raises(sprnn.DoesNotFit, match="would fit") as e:
        sprnn.compile(m, batch=4)
    assert (e.value.layer, e.value.direction) == (0, 0)


@needs_cuda
def test_gpu_batch_mismatch_is_refused():
    m = module("gru", 8, 32).cuda()
    fast = sprnn.compile(m, batch=4)
    with pytest.raises(sprnn.InvalidInput, match="compiled for batch 4"):
        fast(torch.randn(5, 3, 8, device="cuda"))
    assert np.isfinite(fast(torch.randn(5, 4, 8, device="cuda"))[0].cpu().numpy()).all()
