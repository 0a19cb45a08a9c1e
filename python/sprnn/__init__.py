"""sprnn: pruned persistent RNN, GRU and LSTM layers for NVIDIA GPUs, as a drop-in for
``torch.nn.RNN``, ``torch.nn.GRU`` and ``torch.nn.LSTM``.

    import torch, sprnn
    lstm = torch.nn.LSTM(512, 1024, num_layers=2).cuda().eval()
    sprnn.prune_(lstm, density=0.1)          # magnitude-prune weight_hh in place (to try it out)
    fast = sprnn.compile(lstm, batch=4)      # plan + upload once; sprnn.DoesNotFit says what would fit
    out, (h_n, c_n) = fast(x, (h0, c0))      # same call and results as lstm(x, (h0, c0))

How a call runs. For every layer ``l`` and direction ``d`` the input projection
``U = x W_ih^T + b_ih`` is one matrix product in the caller's array library (cuBLAS through
PyTorch for CUDA tensors, numpy on the CPU); the recurrent part, with the pruned ``W_hh``, runs
in sprnn: on the GPU as one persistent kernel that reads ``U`` and writes ``h`` through the
tensors' device pointers on PyTorch's current stream (nothing goes through the host), on the
CPU as sprnn's reference. The reverse direction runs the time-reversed ``U``; the directions are
joined as PyTorch lays them out.

Modules are duck-typed: anything with PyTorch's RNN attributes (``mode`` or the class name,
``input_size``, ``hidden_size``, ``num_layers``, ``bias``, ``batch_first``, ``bidirectional``,
``proj_size``, ``dropout``, ``training``) and parameters ``weight_ih_l{k}[_reverse]`` etc. as
torch tensors or numpy arrays works; numpy input gives numpy output (CPU reference).
``import sprnn`` needs neither torch nor a GPU.
"""

from __future__ import annotations

import numpy as np

# The extension loads the NVIDIA driver library only when a GPU is first asked for (the `sprnn`
# crate's run-time loading), so it imports on a machine without one; GPU calls raise NoDevice.
from . import _native
from ._native import DoesNotFit, InvalidInput, KernelTimeout, NoDevice, SprnnError

__all__ = [
    "prune_",
    "plan",
    "compile",
    "Compiled",
    "Streaming",
    "cuda_available",
    "SprnnError",
    "DoesNotFit",
    "NoDevice",
    "InvalidInput",
    "KernelTimeout",
]
__version__ = _native.__version__

_CELLS = {"RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu", "GRU": "gru", "LSTM": "lstm"}
_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}


def cuda_available() -> bool:
    """Whether a CUDA device sprnn can run on is present (driver, device, sm_80 or newer)."""
    return _native.cuda_available()


def _torch():
    import torch  # noqa: PLC0415 - torch is optional: only CUDA and torch tensors need it

    return torch


def _is_torch(t) -> bool:
    return type(t).__module__.split(".")[0] == "torch"


def _host(t) -> np.ndarray:
    """A tensor or array as a contiguous float32 numpy array (a copy to the host for CUDA)."""
    if _is_torch(t):
        t = t.detach().to("cpu").float().numpy()
    return np.ascontiguousarray(np.asarray(t, dtype=np.float32))


def _caller_layout(output, h_n, c_n, unbatched, batch_first, swap_time_batch):
    """A model's outputs (`output` [T, B, D*H], states [L*D, B, H]) in the caller's layout:
    without the batch axis for unbatched input, `output` as [B, T, D*H] for batch_first
    (`swap_time_batch` swaps its first two axes)."""
    if unbatched:
        return output[:, 0], h_n[:, 0], None if c_n is None else c_n[:, 0]
    if batch_first:
        output = swap_time_batch(output)
    return output, h_n, c_n


def _f32_bytes(a) -> bytes:
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


class _Spec:
    """A recurrent module as sprnn sees it: cell, sizes, and per layer and direction its
    ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` objects (``None`` without bias)."""

    def __init__(self, module):
        mode = getattr(module, "mode", None)
        if mode is None:
            name = type(module).__name__.upper()
            if name == "RNN":
                name = "RNN_" + str(getattr(module, "nonlinearity", "tanh")).upper()
            mode = name
        if mode not in _CELLS:
            raise InvalidInput(
                f"unsupported module {type(module).__name__} (mode {mode!r}): sprnn runs "
                "torch.nn.RNN (tanh, relu), torch.nn.GRU and torch.nn.LSTM"
            )
        self.cell = _CELLS[mode]
        self.gates = _GATES[self.cell]
        self.input_size = int(module.input_size)
        self.hidden = int(module.hidden_size)
        self.layers = int(getattr(module, "num_layers", 1))
        self.directions = 2 if getattr(module, "bidirectional", False) else 1
        self.batch_first = bool(getattr(module, "batch_first", False))
        self.bias = bool(getattr(module, "bias", True))
        proj = int(getattr(module, "proj_size", 0) or 0)
        if proj:
            raise InvalidInput(f"proj_size={proj}: LSTM projections are not supported by sprnn")
        dropout = float(getattr(module, "dropout", 0.0) or 0.0)
        if dropout and self.layers > 1 and getattr(module, "training", False):
            raise InvalidInput(
                f"dropout={dropout} in training mode: sprnn runs inference only (call module.eval())"
            )
        self.weights = []
        for layer in range(self.layers):
            dirs = []
            for d in range(self.directions):
                sfx = f"l{layer}" + ("_reverse" if d else "")
                w_ih = getattr(module, "weight_ih_" + sfx, None)
                w_hh = getattr(module, "weight_hh_" + sfx, None)
                if w_ih is None or w_hh is None:
                    raise InvalidInput(f"module has no weight_ih_{sfx} / weight_hh_{sfx}")
                b_ih = getattr(module, "bias_ih_" + sfx, None) if self.bias else None
                b_hh = getattr(module, "bias_hh_" + sfx, None) if self.bias else None
                gh = self.gates * self.hidden
                want_ih = (gh, self.input_size if layer == 0 else self.directions * self.hidden)
                if tuple(w_ih.shape) != want_ih:
                    raise InvalidInput(f"weight_ih_{sfx} has shape {tuple(w_ih.shape)}, expected {want_ih}")
                if tuple(w_hh.shape) != (gh, self.hidden):
                    raise InvalidInput(f"weight_hh_{sfx} has shape {tuple(w_hh.shape)}, expected {(gh, self.hidden)}")
                dirs.append({"w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh, "name": sfx})
            self.weights.append(dirs)

    def recurrent(self, l, d):
        """The host-side recurrent part of layer ``l``, direction ``d``."""
        w = self.weights[l][d]
        gh = self.gates * self.hidden
        b_hh = np.zeros(gh, np.float32) if w["b_hh"] is None else _host(w["b_hh"])
        return _native.Recurrent(self.cell, self.hidden, _f32_bytes(_host(w["w_hh"])), _f32_bytes(b_hh))


def prune_(module, density: float):
    """Magnitude-prunes every ``weight_hh_*`` of ``module`` in place: of each matrix the
    ``round(density * size)`` entries largest in magnitude stay, the others become zero (ties
    broken by position). ``density`` is in ``(0, 1]``. Returns the module. Meant for trying
    sprnn out; a network pruned during training keeps its accuracy far better."""
    density = float(density)
    if not 0.0 < density <= 1.0:
        raise InvalidInput(f"invalid density: {density}; must be in (0, 1]")
    spec = _Spec(module)
    for dirs in spec.weights:
        for w in dirs:
            _prune_matrix(w["w_hh"], density)
    return module


def _prune_matrix(w, density):
    n = int(np.prod(w.shape))
    keep = min(n, max(1, int(round(density * n))))
    if _is_torch(w):
        torch = _torch()
        with torch.no_grad():
            flat = w.detach().reshape(-1).abs().float()
            idx = torch.topk(flat, keep, sorted=False).indices
            mask = torch.zeros(n, dtype=torch.bool, device=w.device)
            mask[idx] = True
            w.mul_(mask.view(w.shape).to(w.dtype))
    else:
        a = np.asarray(w)
        flat = np.abs(a.reshape(-1).astype(np.float64))
        idx = np.argsort(-flat, kind="stable")[keep:]
        a.reshape(-1)[idx] = 0


def plan(module, batch: int, device=None) -> dict:
    """The planner's answer for every layer and direction of ``module`` at batch ``batch`` on
    ``device`` (a CUDA ordinal, ``"h200"``, ``"a100"``; default: CUDA device 0, or the H200
    preset without a GPU). Needs no GPU for the presets.

    Returns ``{"fits", "device", "cell", "hidden", "layers": [...]}``; each layer entry has
    ``layer``, ``direction``, ``fits`` and either the launch shape (``grid``,
    ``threads_per_cta``, ``registers_per_thread``, ``smem_bytes``, ..., ``hidden_state`` and
    ``products``: ``"f16"`` where the products are summed in fp16 pairs over groups of eight
    nonzeros, the default for tanh, GRU and LSTM; ``"f32"`` for ReLU) or ``error``, ``kind``
    and what would fit (``fit_density``, ``fit_batch``, ``max_batch``)."""
    spec = _Spec(module)
    layers = []
    name = None
    for l in range(spec.layers):
        for d in range(spec.directions):
            p = dict(spec.recurrent(l, d).plan(int(batch), device))
            name = p.pop("device")
            layers.append({"layer": l, "direction": d, **p})
    return {
        "fits": all(p["fits"] for p in layers),
        "device": name,
        "cell": spec.cell,
        "hidden": spec.hidden,
        "batch": int(batch),
        "layers": layers,
    }


def compile(module, batch: int, *, precision: str = "f32", timeout_ms: float = 1000.0):  # noqa: A001
    """Plans ``module`` (``torch.nn.RNN/GRU/LSTM`` or a stand-in) for batch ``batch`` and, when
    its weights are on a CUDA device, uploads every layer there once. Returns a
    :class:`Compiled`, called as the module is called.

    The weights are read now: later changes to the module are not seen. Raises
    :class:`DoesNotFit` (with the planner's message: by how much, and which density or batch
    would fit) when a layer cannot run on the GPU, :class:`InvalidInput` for what sprnn cannot
    run (``proj_size``, dropout in training mode, other modules). ``precision`` is the CPU
    reference's arithmetic (``"f32"``, ``"f64"``, or ``"device"``: the GPU's fp16 roundings);
    ``timeout_ms`` bounds any wait of one CTA for another on the GPU."""
    return Compiled(module, int(batch), precision=precision, timeout_ms=timeout_ms)


def _device_of(t):
    if _is_torch(t) and t.is_cuda:
        return t.device.index if t.device.index is not None else _torch().cuda.current_device()
    return None


class Compiled:
    """A recurrent module compiled by :func:`compile`: ``out, h_n = fast(x, h0)`` (RNN, GRU) or
    ``out, (h_n, c_n) = fast(x, (h0, c0))`` (LSTM), with PyTorch's shapes, ``batch_first`` and
    unbatched (2-D) input. CUDA tensors run on the GPU on PyTorch's current stream, CPU tensors
    and numpy arrays on the CPU reference. fp32, fp16 and bf16 inputs; the outputs have the
    input's dtype."""

    def __init__(self, module, batch, *, precision="f32", timeout_ms=1000.0):
        if batch < 1:
            raise InvalidInput(f"invalid batch: {batch}; must be at least 1")
        if precision not in ("f32", "f64", "device"):
            raise InvalidInput(f'invalid precision: {precision!r}; one of "f32", "f64", "device"')
        self.spec = spec = _Spec(module)
        self.batch = batch
        self.precision = precision
        self.cell = spec.cell
        self.device = _device_of(spec.weights[0][0]["w_hh"])
        self._recurrent = [[spec.recurrent(l, d) for d in range(spec.directions)] for l in range(spec.layers)]
        gh = spec.gates * spec.hidden
        self._proj_host = [
            [(_host(w["w_ih"]), np.zeros(gh, np.float32) if w["b_ih"] is None else _host(w["b_ih"])) for w in dirs]
            for dirs in spec.weights
        ]
        self._gpu = None
        self._proj_dev = {}
        if self.device is not None:
            self._gpu = []
            for l in range(spec.layers):
                row = []
                for d in range(spec.directions):
                    try:
                        row.append(self._recurrent[l][d].to_gpu(batch, self.device, timeout_ms))
                    except SprnnError as e:
                        e.layer, e.direction = l, d
                        raise
                self._gpu.append(row)

    # -- shapes --------------------------------------------------------------------------

    def _hx(self, hx):
        lstm = self.cell == "lstm"
        if hx is None:
            return None, None
        if lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise InvalidInput("invalid hx: an LSTM takes (h0, c0)")
            return hx[0], hx[1]
        if isinstance(hx, (tuple, list)):
            raise InvalidInput(f"invalid hx: a {self.cell} module takes one tensor h0, not a tuple")
        return hx, None

    def _check_state(self, name, s, batch, unbatched):
        spec = self.spec
        want = (spec.layers * spec.directions, spec.hidden) if unbatched else (spec.layers * spec.directions, batch, spec.hidden)
        if tuple(s.shape) != want:
            raise InvalidInput(f"invalid {name}: shape {tuple(s.shape)}, expected {want} (L*D, B, H)")

    def __call__(self, input, hx=None, *, out=None):  # noqa: A002 - PyTorch's parameter name
        output, h_n, c_n = self._run(input, hx, 0, out, False)
        return (output, (h_n, c_n)) if self.cell == "lstm" else (output, h_n)

    def stream(self) -> "Streaming":
        """A streaming form of this model (unidirectional only): see :class:`Streaming`."""
        return Streaming(self)

    def plan(self) -> dict:
        """The planner's answer for the compiled batch on the device the weights are on (the
        H200 preset for CPU weights): as :func:`plan`."""
        layers = []
        for l, dirs in enumerate(self._recurrent):
            for d, r in enumerate(dirs):
                p = dict(r.plan(self.batch, self.device if self.device is not None else "h200"))
                p.pop("device")
                if self._gpu is not None:
                    p["launch"] = dict(self._gpu[l][d].launch_shape())
                layers.append({"layer": l, "direction": d, **p})
        return {"fits": all(p["fits"] for p in layers), "batch": self.batch, "layers": layers}

    def _run(self, x, hx, steps_done, out, state_f32):
        h0, c0 = self._hx(hx)
        if self.cell != "lstm" and c0 is not None:
            raise InvalidInput("invalid c0: only an LSTM has a cell state")
        if _is_torch(x) and x.is_cuda:
            return self._run_cuda(x, h0, c0, steps_done, out, state_f32)
        return self._run_host(x, h0, c0, steps_done, out, state_f32)

    def _layout(self, shape):
        """``(unbatched, T, B)`` of an input shape, checked."""
        spec = self.spec
        if len(shape) == 2:
            unbatched, (t, i), b = True, shape, 1
        elif len(shape) == 3:
            unbatched = False
            b, t, i = shape if spec.batch_first else (shape[1], shape[0], shape[2])
        else:
            raise InvalidInput(f"invalid input: shape {tuple(shape)}; expected (T, B, I), (B, T, I) with batch_first, or (T, I)")
        if i != spec.input_size:
            raise InvalidInput(f"invalid input: {i} features, the module takes input_size={spec.input_size}")
        if t < 1:
            raise InvalidInput("invalid input: 0 steps; a sequence needs at least one step")
        return unbatched, t, b

    # -- CPU: the reference ------------------------------------------------------------------

    def _run_host(self, x, h0, c0, steps_done, out, state_f32):
        spec = self.spec
        torch_in = _is_torch(x)
        dtype = x.dtype if torch_in else None
        xs = _host(x)
        unbatched, t, b = self._layout(xs.shape)
        if unbatched:
            xs = xs[:, None, :]
        elif spec.batch_first:
            xs = xs.transpose(1, 0, 2)
        xs = np.ascontiguousarray(xs)
        n = spec.layers * spec.directions
        states = []
        for name, s in (("h0", h0), ("c0", c0)):
            if s is None:
                states.append(None)
                continue
            self._check_state(name, s, b, unbatched)
            states.append(_host(s).reshape(n, b, spec.hidden))
        h0s, c0s = states
        H = spec.hidden
        h_n = np.zeros((n, b, H), np.float32)
        c_n = np.zeros((n, b, H), np.float32) if self.cell == "lstm" else None
        layer_in = xs
        for l in range(spec.layers):
            outs = []
            for d in range(spec.directions):
                k = l * spec.directions + d
                w_ih, b_ih = self._proj_host[l][d]
                u = (layer_in.reshape(t * b, -1) @ w_ih.T + b_ih).astype(np.float32).reshape(t, b, -1)
                if d:
                    u = u[::-1]
                hb, cb = self._recurrent[l][d].reference(
                    _f32_bytes(u),
                    t,
                    b,
                    None if h0s is None else _f32_bytes(h0s[k]),
                    None if c0s is None else _f32_bytes(c0s[k]),
                    self.precision,
                    steps_done,
                )
                h = np.frombuffer(hb, np.float32).reshape(t, b, H)
                h_n[k] = h[-1]
                if cb is not None:
                    c_n[k] = np.frombuffer(cb, np.float32).reshape(b, H)
                outs.append(h[::-1] if d else h)
            layer_in = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=2)
        output, h_n, c_n = _caller_layout(layer_in, h_n, c_n, unbatched, spec.batch_first, lambda a: a.transpose(1, 0, 2))
        output = np.ascontiguousarray(output)
        if torch_in:
            torch = _torch()

            def back(a, to):
                return None if a is None else torch.from_numpy(np.ascontiguousarray(a)).to(to)

            sdt = torch.float32 if state_f32 else dtype
            output, h_n, c_n = back(output, dtype), back(h_n, sdt), back(c_n, sdt)
        if out is not None:
            out[...] = output
            output = out
        return output, h_n, c_n

    # -- CUDA: the persistent kernel on PyTorch's tensors and stream -------------------------

    def _projection(self, l, d, dtype):
        key = (l, d, dtype)
        p = self._proj_dev.get(key)
        if p is None:
            torch = _torch()
            w = self.spec.weights[l][d]
            dev = torch.device("cuda", self.device)
            w_ih = w["w_ih"].detach().to(dev, dtype)
            gh = self.spec.gates * self.spec.hidden
            b_ih = torch.zeros(gh, dtype=dtype, device=dev) if w["b_ih"] is None else w["b_ih"].detach().to(dev, dtype)
            p = self._proj_dev[key] = (w_ih.contiguous(), b_ih)
        return p

    def _cuda_input(self, x):
        """``(x, unbatched, T, B)``: a CUDA input checked against the compiled module (its device,
        dtype, shape and batch) and laid out as a contiguous ``(T, B, I)`` tensor."""
        torch = _torch()
        spec = self.spec
        if self._gpu is None:
            raise InvalidInput("invalid input: a CUDA tensor, but the module was compiled with CPU weights (move it to the GPU first)")
        dev = x.device
        if (dev.index if dev.index is not None else torch.cuda.current_device()) != self.device:
            raise InvalidInput(f"invalid input: on {dev}, the module was compiled for cuda:{self.device}")
        if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise InvalidInput(f"invalid input: dtype {x.dtype}; sprnn takes float32, float16 or bfloat16")
        unbatched, t, b = self._layout(tuple(x.shape))
        if b != self.batch:
            raise InvalidInput(f"invalid input: batch {b}, compiled for batch {self.batch} (compile again for this batch)")
        if unbatched:
            x = x.unsqueeze(1)
        elif spec.batch_first:
            x = x.transpose(0, 1)
        return x.contiguous(), unbatched, t, b

    def _cuda_state(self, name, s, b, unbatched, dev):
        """An initial state ``h0`` or ``c0`` on the input's device as ``(L*D, B, H)`` f32, checked."""
        if s is None:
            return None
        torch = _torch()
        spec = self.spec
        self._check_state(name, s, b, unbatched)
        if not s.is_cuda or s.device != dev:
            raise InvalidInput(f"invalid {name}: on {s.device}, the input is on {dev}")
        return s.reshape(spec.layers * spec.directions, b, spec.hidden).to(torch.float32).contiguous()

    def _run_cuda(self, x, h0, c0, steps_done, out, state_f32):
        torch = _torch()
        spec = self.spec
        dev, dtype = x.device, x.dtype
        x, unbatched, t, b = self._cuda_input(x)
        H, n = spec.hidden, spec.layers * spec.directions
        f32 = torch.float32
        h0, c0 = self._cuda_state("h0", h0, b, unbatched, dev), self._cuda_state("c0", c0, b, unbatched, dev)
        h_n = torch.empty((n, b, H), dtype=f32, device=dev)
        c_n = torch.empty((n, b, H), dtype=f32, device=dev) if self.cell == "lstm" else None
        direct = (
            out is not None
            and spec.directions == 1
            and not unbatched
            and not spec.batch_first
            and out.dtype == f32
            and out.is_contiguous()
            and out.device == dev
            and tuple(out.shape) == (t, b, H)
        )
        layer_in = self._run_layers_cuda(x, (h0, c0), steps_done, (h_n, c_n), out if direct else None)
        output, h_n, c_n = _caller_layout(layer_in, h_n, c_n, unbatched, spec.batch_first, lambda a: a.transpose(0, 1))
        output = output.to(dtype)
        if not state_f32:
            h_n = h_n.to(dtype)
            c_n = None if c_n is None else c_n.to(dtype)
        if out is not None and output is not out:
            out.copy_(output)
            output = out
        return output, h_n, c_n

    def _run_layers_cuda(self, x, state, steps_done, final, last_out):
        """Every layer and direction on the GPU, on PyTorch's current stream: the input
        projection by ``torch.addmm``, then the persistent kernel from ``state`` = ``(h0, c0)``
        (``(L*D, B, H)`` each or ``None``), writing each one's last ``h`` (and LSTM's ``c``) into
        ``final`` = ``(h_n, c_n)``; the last layer writes into ``last_out`` where given. Returns
        the last layer's output, ``(T, B, D*H)``."""
        torch = _torch()
        spec = self.spec
        (h0, c0), (h_n, c_n) = state, final
        t, b = x.shape[0], x.shape[1]
        dev, dtype = x.device, x.dtype
        stream = torch.cuda.current_stream(dev).cuda_stream
        layer_in = x
        for l in range(spec.layers):
            outs = []
            last = l == spec.layers - 1
            for d in range(spec.directions):
                k = l * spec.directions + d
                w_ih, b_ih = self._projection(l, d, dtype)
                u = torch.addmm(b_ih, layer_in.reshape(t * b, -1).to(dtype), w_ih.t())
                if dtype == torch.bfloat16:
                    u = u.float()
                u = u.view(t, b, -1)
                if d:
                    u = u.flip(0)
                u = u.contiguous()
                h = last_out if (last_out is not None and last) else torch.empty((t, b, spec.hidden), dtype=torch.float32, device=dev)
                self._gpu[l][d].forward(
                    t,
                    u.data_ptr(),
                    u.dtype == torch.float16,
                    0 if h0 is None else h0[k].data_ptr(),
                    0 if c0 is None else c0[k].data_ptr(),
                    h.data_ptr(),
                    c_n[k].data_ptr() if c_n is not None else 0,
                    stream,
                    steps_done,
                )
                h_n[k].copy_(h[-1])
                outs.append(h.flip(0) if d else h)
            layer_in = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
        return layer_in


class Streaming:
    """A compiled unidirectional model fed chunk by chunk: every layer's ``h`` (and LSTM's
    ``c``) carries over from one call to the next, so chunks give what one long call gives.
    ``out = s(chunk)`` takes and returns what the module takes and returns as ``output``
    (``(T, B, I)``, or ``(B, T, I)`` with ``batch_first``).

    Batch slots are independent sequences: :meth:`reset` starts slots afresh (one stream
    ended, another joins), :meth:`replace` puts a saved state into a slot, :attr:`state` reads
    ``(h, c)`` (``(L, B, H)`` each; ``c`` ``None`` except for LSTM)."""

    def __init__(self, compiled: Compiled):
        if compiled.spec.directions != 1:
            raise InvalidInput("a bidirectional model cannot stream: its reverse direction needs the whole sequence in one call")
        self.compiled = compiled
        self._h = None
        self._c = None
        self.steps = 0

    def __call__(self, chunk):
        c = self.compiled
        hx = None
        if self._h is not None:
            hx = (self._h, self._c) if c.cell == "lstm" else self._h
        output, h_n, c_n = c._run(chunk, hx, self.steps, None, True)
        unbatched = len(tuple(chunk.shape)) == 2
        self._h = h_n
        self._c = c_n
        self.steps += int(chunk.shape[0] if (unbatched or not c.spec.batch_first) else chunk.shape[1])
        return output

    @property
    def state(self):
        """``(h, c)``: each layer's state, ``(L, B, H)``; ``None`` before the first chunk."""
        return self._h, self._c

    def reset(self, slots=None):
        """Starts batch slots ``slots`` (an index or a list; default all) from zero state."""
        if slots is None:
            self._h = self._c = None
            self.steps = 0
            return
        if self._h is None:
            return
        idx = [slots] if isinstance(slots, int) else list(slots)
        for s in (self._h, self._c):
            if s is not None:
                for i in idx:
                    s[:, i] = 0

    def replace(self, slot: int, h, c=None):
        """Puts state ``h`` (and LSTM's ``c``), ``(L, H)`` each, into batch slot ``slot``: the
        slot continues that sequence from the next chunk on."""
        cc = self.compiled
        spec = cc.spec
        want = (spec.layers, spec.hidden)
        if tuple(h.shape) != want:
            raise InvalidInput(f"invalid h: shape {tuple(h.shape)}, expected {want} (L, H)")
        if cc.cell == "lstm" and c is not None and tuple(c.shape) != want:
            raise InvalidInput(f"invalid c: shape {tuple(c.shape)}, expected {want} (L, H)")
        if cc.cell != "lstm" and c is not None:
            raise InvalidInput("invalid c: only an LSTM has a cell state")
        if self._h is None:
            self._h = _zeros_like_state(h, (spec.layers, cc.batch, spec.hidden))
            if cc.cell == "lstm":
                self._c = _zeros_like_state(h, (spec.layers, cc.batch, spec.hidden))
        self._h[:, slot] = h
        if self._c is not None:
            self._c[:, slot] = 0 if c is None else c


def _zeros_like_state(like, shape):
    if _is_torch(like):
        return _torch().zeros(shape, dtype=like.dtype, device=like.device)
    return np.zeros(shape, np.float32)
