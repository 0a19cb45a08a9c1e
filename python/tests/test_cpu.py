"""The package's core without PyTorch or a GPU: module conversion, pruning, planning, the CPU
reference against PyTorch's equations, streaming, and the errors."""

import numpy as np
import pytest

import sprnn
from conftest import GATES, HAVE_CUDA, StandIn, oracle

CELLS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]


def call(fast, cell, x, h0=None, c0=None):
    if cell == "lstm":
        out, (h_n, c_n) = fast(x, None if h0 is None else (h0, c0))
        return out, h_n, c_n
    out, h_n = fast(x, h0)
    return out, h_n, None


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (2, True)], ids=["L1", "L2", "L2-bidir"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["tbi", "bti"])
def test_reference_matches_pytorch_equations(cell, layers, bidirectional, batch_first):
    m = StandIn(cell, 5, 12, layers=layers, bidirectional=bidirectional, batch_first=batch_first, seed=1)
    sprnn.prune_(m, 0.4)
    rng = np.random.default_rng(2)
    t, b = 7, 3
    x = rng.standard_normal((b, t, 5) if batch_first else (t, b, 5)).astype(np.float32)
    n = layers * (2 if bidirectional else 1)
    h0 = rng.standard_normal((n, b, 12)).astype(np.float32) * 0.5
    c0 = rng.standard_normal((n, b, 12)).astype(np.float32) * 0.5 if cell == "lstm" else None
    fast = sprnn.compile(m, batch=b)
    out, h_n, c_n = call(fast, cell, x, h0, c0)
    want_out, want_h, want_c = oracle(m, x, h0, c0)
    assert out.shape == want_out.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, want_out, atol=1e-4)
    np.testing.assert_allclose(h_n, want_h, atol=1e-4)
    if cell == "lstm":
        np.testing.assert_allclose(c_n, want_c, atol=1e-4)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_no_bias_zero_state_and_unbatched_input(cell):
    m = StandIn(cell, 4, 8, bias=False, seed=3)
    x = np.random.default_rng(4).standard_normal((6, 4)).astype(np.float32)  # (T, I): unbatched
    out, h_n, _ = call(sprnn.compile(m, batch=1), cell, x)
    want, want_h, _ = oracle(m, x[:, None, :])
    assert out.shape == (6, 8) and h_n.shape == (1, 8)
    np.testing.assert_allclose(out, want[:, 0], atol=1e-4)
    np.testing.assert_allclose(h_n, want_h[:, 0], atol=1e-4)


def test_device_precision_is_close_to_f32():
    m = StandIn("lstm", 6, 16, seed=5)
    sprnn.prune_(m, 0.3)
    x = np.random.default_rng(6).standard_normal((10, 2, 6)).astype(np.float32)
    a = sprnn.compile(m, batch=2)(x)[0]
    b = sprnn.compile(m, batch=2, precision="device")(x)[0]
    assert not np.array_equal(a, b)  # fp16 weights and state
    np.testing.assert_allclose(a, b, atol=1e-2)


@pytest.mark.parametrize("density", [0.01, 0.1, 0.5, 1.0])
def test_prune_keeps_the_largest_magnitudes(density):
    m = StandIn("gru", 3, 20, layers=2, bidirectional=True, seed=7)
    before = m.weight_hh_l1_reverse.copy()
    assert sprnn.prune_(m, density) is m
    for name in ["weight_hh_l0", "weight_hh_l0_reverse", "weight_hh_l1", "weight_hh_l1_reverse"]:
        w = getattr(m, name)
        assert np.count_nonzero(w) == max(1, round(density * w.size))
    w = m.weight_hh_l1_reverse
    kept = np.abs(before[w != 0])
    dropped = np.abs(before[w == 0])
    if dropped.size:
        assert kept.min() >= dropped.max()
    np.testing.assert_array_equal(w[w != 0], before[w != 0])
    assert np.count_nonzero(m.weight_ih_l0 == 0) == 0  # only weight_hh is pruned


@pytest.mark.parametrize("density", [0.0, -0.1, 1.5])
def test_prune_refuses_bad_density(density):
    with pytest.raises(sprnn.InvalidInput, match="density"):
        sprnn.prune_(StandIn("rnn_tanh", 3, 4), density)


def test_plan_without_gpu_uses_presets():
    m = StandIn("rnn_tanh", 8, 256, layers=2, bidirectional=True)
    sprnn.prune_(m, 0.1)
    p = sprnn.plan(m, 4, device="h200")
    assert p["fits"] and p["cell"] == "rnn_tanh" and p["hidden"] == 256 and p["batch"] == 4
    assert [(q["layer"], q["direction"]) for q in p["layers"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    q = p["layers"][0]
    for key in ["grid", "threads_per_cta", "registers_per_thread", "smem_bytes", "list_len", "nnz"]:
        assert isinstance(q[key], int) and q[key] > 0, key
    # tanh's bounded state: the fp16 group sums (the default for tanh, GRU and LSTM).
    assert q["hidden_state"] == "f16" and q["products"] == "f16"
    assert q["nnz"] == np.count_nonzero(m.weight_hh_l0)
    assert "h200" in p["device"]
    assert sprnn.plan(m, 4, device="a100")["fits"]
    if not HAVE_CUDA:
        assert "h200" in sprnn.plan(m, 4)["device"]


def test_plan_says_what_would_fit():
    m = StandIn("lstm", 8, 512)
    p = sprnn.plan(m, 4, device="h200")  # dense LSTM, H = 512: too many weights for registers?
    big = sprnn.plan(m, 1000, device="h200")  # the hidden state of 1000 sequences
    assert not big["fits"]
    q = big["layers"][0]
    assert q["kind"] == "SharedMemory" and 0 < q["max_batch"] < 1000 and "batch" in q["error"]
    assert sprnn.plan(m, q["max_batch"], device="h200")["layers"][0]["kind" if not p["fits"] else "fits"]


def test_plan_refuses_a_layer_too_large_for_registers():
    m = StandIn("lstm", 8, 4096, seed=8)  # dense: far over the register file
    q = sprnn.plan(m, 4, device="h200")["layers"][0]
    assert not q["fits"] and q["kind"] == "DoesNotFit"
    assert 0 < q["fit_density"] < 1 and "would fit" in q["error"]


def test_unsupported_modules_are_refused_clearly():
    m = StandIn("lstm", 4, 8)
    m.proj_size = 4
    with pytest.raises(sprnn.InvalidInput, match="proj_size"):
        sprnn.compile(m, batch=2)
    m = StandIn("gru", 4, 8, layers=2)
    m.dropout, m.training = 0.5, True
    with pytest.raises(sprnn.InvalidInput, match="dropout"):
        sprnn.compile(m, batch=2)
    m.training = False
    sprnn.compile(m, batch=2)  # dropout does nothing in eval mode

    class Conv:
        input_size = hidden_size = 4
    with pytest.raises(sprnn.InvalidInput, match="unsupported module"):
        sprnn.plan(Conv(), 1)


def test_bad_calls_raise_with_the_argument_named():
    m = StandIn("lstm", 4, 8)
    fast = sprnn.compile(m, batch=2)
    x = np.zeros((3, 2, 4), np.float32)
    with pytest.raises(sprnn.InvalidInput, match="input_size=4"):
        fast(np.zeros((3, 2, 5), np.float32))
    with pytest.raises(sprnn.InvalidInput, match="h0"):
        fast(x, (np.zeros((2, 2, 8), np.float32), np.zeros((1, 2, 8), np.float32)))
    with pytest.raises(sprnn.InvalidInput, match="LSTM takes"):
        fast(x, np.zeros((1, 2, 8), np.float32))
    with pytest.raises(sprnn.InvalidInput):
        sprnn.compile(m, batch=0)
    assert issubclass(sprnn.DoesNotFit, sprnn.SprnnError) and issubclass(sprnn.InvalidInput, sprnn.SprnnError)


def test_native_errors_carry_the_rust_message():
    with pytest.raises(sprnn.InvalidInput, match=r"invalid w_hh: 4 bytes, expected 16 f32 values"):
        sprnn._native.Recurrent("rnn_tanh", 4, b"\0" * 4, b"\0" * 16)
    r = sprnn._native.Recurrent("gru", 2, np.ones(12, np.float32).tobytes(), np.zeros(6, np.float32).tobytes())
    assert (r.cell, r.hidden, r.nnz) == ("gru", 2, 12)
    with pytest.raises(sprnn.InvalidInput, match=r"invalid u: 16 bytes, expected 6 f32 values"):
        r.reference(b"\0" * 16, 1, 1)


@pytest.mark.skipif(HAVE_CUDA, reason="a CUDA device is present")
def test_gpu_calls_without_a_device_raise_no_device():
    assert not sprnn.cuda_available()
    r = sprnn._native.Recurrent("rnn_tanh", 2, np.ones(4, np.float32).tobytes(), np.zeros(2, np.float32).tobytes())
    with pytest.raises(sprnn.NoDevice, match="CUDA"):
        r.to_gpu(1, 0)
    with pytest.raises(sprnn.NoDevice):
        sprnn._native.device_info_dict(0)


@pytest.mark.parametrize("cell", ["rnn_relu", "lstm"])
def test_streaming_chunks_equal_one_call(cell):
    m = StandIn(cell, 5, 10, layers=2, seed=9)
    sprnn.prune_(m, 0.5)
    x = np.random.default_rng(10).standard_normal((12, 3, 5)).astype(np.float32)
    fast = sprnn.compile(m, batch=3)
    whole = fast(x)[0]
    s = fast.stream()
    parts = [s(x[a:b]) for a, b in [(0, 1), (1, 5), (5, 12)]]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)
    assert s.steps == 12
    h, c = s.state
    assert h.shape == (2, 3, 10) and (c is not None) == (cell == "lstm")


def test_streaming_slots_reset_and_replace():
    m = StandIn("lstm", 5, 10, seed=11)
    x = np.random.default_rng(12).standard_normal((8, 3, 5)).astype(np.float32)
    fast = sprnn.compile(m, batch=3)
    s = fast.stream()
    s(x[:4])
    saved_h, saved_c = s.state[0][:, 2].copy(), s.state[1][:, 2].copy()
    s.reset(1)  # slot 1: a new sequence starts
    assert np.all(s.state[0][:, 1] == 0) and np.all(s.state[1][:, 1] == 0)
    out = s(x[4:])
    fresh = fast(x[4:, 1:2].repeat(3, axis=1))[0][:, 0]
    np.testing.assert_allclose(out[:, 1], fresh, atol=1e-6)
    whole = fast(x)[0]
    np.testing.assert_allclose(out[:, 0], whole[4:, 0], atol=1e-6)  # untouched slots continue
    s.replace(0, saved_h, saved_c)  # slot 0 resumes slot 2's saved sequence
    np.testing.assert_array_equal(s.state[0][:, 0], saved_h)
    with pytest.raises(sprnn.InvalidInput, match="shape"):
        s.replace(0, np.zeros((2, 10)))
    s.reset()
    assert s.state == (None, None) and s.steps == 0


def test_bidirectional_models_cannot_stream():
    with pytest.raises(sprnn.InvalidInput, match="bidirectional"):
        sprnn.compile(StandIn("gru", 3, 4, bidirectional=True), batch=1).stream()
