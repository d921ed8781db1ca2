"""EventRNN: the one network behind every Magenta variant (melody, improv, polyphony, performance).

A :class:`~modeling.families.base.VariantConfig` fixes the encoding (input size, classes) and the
default :class:`~modeling.families.base.HParams`; ``modeling/train.py`` builds the model from them,
feeds ``encoding.inputs(...)`` features and trains the logits against ``encoding.labels(...)``;
``modeling/generate.py`` calls :meth:`EventRNN.step` one event at a time (or
:meth:`EventRNN.forward` with ``state`` to prime on a whole sequence), and
``modeling/registry/`` rebuilds it from a checkpoint's JSON config.

Architecture (Magenta's ``events_rnn_graph``): stacked LSTM layers, dropout
``1 - dropout_keep_prob`` on *every* layer's output (Magenta wraps each cell in a
``DropoutWrapper``), a linear head to ``num_classes``; with the ``output_terms`` hparam the
encoding's own terms are added to the head's logits (performance: note age -> release). With ``attn_length > 0`` there are two ways
to attend over the last ``attn_length`` steps:

* ``attention="parallel"`` (default): causal windowed dot-product attention over the top layer's
  outputs, computed for all positions at once with a blocked band mask; the head reads
  ``concat(h_t, attention_t)``. The window starts as ``attn_length`` zero slots, exactly like
  Magenta's zero-initialised attention state, and a learned bias per lag lets the model prefer
  1- or 2-bar distances.
* ``attention="sequential"``: Magenta's ``AttentionCellWrapper`` on the first layer (additive
  scoring with query ``concat(c, h)``, the attention read fed back into the next step's input,
  the projected output appended to the window), stepped one position at a time. It exists to
  measure the parallel version against (``bench/train.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from modeling.families.base import Encoding, HParams, VariantConfig

State = dict[str, torch.Tensor]
"""Recurrent state, every tensor batch-first so beam search can reorder it with ``index_select``."""

ATTENTION_MODES = ("parallel", "sequential")


class Dropout(nn.Module):
    """Inverted dropout with a mask from ``torch.rand`` (same semantics as ``nn.Dropout``).

    On CPU ``nn.Dropout``'s ``bernoulli_`` mask is slow: forward + backward of a 128 x 332 x 128
    batch take 85 ms with ``F.dropout`` and 28 ms with this in-place uniform threshold (measured
    here), about a tenth of a basic_rnn step.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        scale = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))  # 0 or 1/keep, in place
        return x * scale

    def extra_repr(self) -> str:
        return f"p={self.p}"


class WindowAttention(nn.Module):
    """Causal attention of position t over positions t-L .. t-1 of the same sequence.

    The window is computed in blocks of L queries against 2L keys (the previous block and the
    current one), so memory and time grow as T * L rather than T * T. A fixed band mask keeps it
    exactly causal: a query never sees its own or a later position.
    """

    def __init__(self, size: int, length: int) -> None:
        super().__init__()
        self.size, self.length = size, length
        self.query = nn.Linear(size, size)
        self.key = nn.Linear(size, size, bias=False)
        self.lag_bias = nn.Parameter(torch.zeros(length))  # index lag - 1, lag in 1..L
        self.scale = 1.0 / math.sqrt(size)
        i = torch.arange(length)[:, None]
        j = torch.arange(2 * length)[None, :]
        lag = length + i - j  # query i of a block vs key j of [previous block, this block]
        self.register_buffer("_lag", lag, persistent=False)

    def _band_bias(self) -> torch.Tensor:
        """(L, 2L) additive scores: the lag's bias inside the window, -inf outside."""
        lag = self._lag
        valid = (lag >= 1) & (lag <= self.length)
        bias = self.lag_bias[(lag - 1).clamp(0, self.length - 1)]
        return bias.masked_fill(~valid, float("-inf"))

    def initial_cache(
        self, batch: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.zeros(batch, self.length, self.size, device=device, dtype=dtype)
        return z, z.clone()

    def forward(
        self, h: torch.Tensor, cache_k: torch.Tensor, cache_v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attention reads (B, T, D) for ``h`` (B, T, D) following a window cache (B, L, D).

        Returns the reads and the cache after the last position (the last L keys/values).
        """
        b, t, d = h.shape
        L = self.length
        nb = -(-t // L)
        q, k, v = self.query(h), self.key(h), h
        pad = nb * L - t
        if pad:
            q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
        kb = torch.cat([cache_k.unsqueeze(1), k.view(b, nb, L, d)], 1)  # (B, nb + 1, L, D)
        vb = torch.cat([cache_v.unsqueeze(1), v.view(b, nb, L, d)], 1)
        k2 = torch.cat([kb[:, :-1], kb[:, 1:]], 2)  # (B, nb, 2L, D)
        v2 = torch.cat([vb[:, :-1], vb[:, 1:]], 2)
        scores = torch.matmul(q.view(b, nb, L, d), k2.transpose(-1, -2)) * self.scale
        weights = torch.softmax(scores + self._band_bias(), dim=-1)
        reads = torch.matmul(weights, v2).reshape(b, nb * L, d)[:, :t]
        keys = torch.cat([cache_k, k[:, :t]], 1)[:, -L:]
        values = torch.cat([cache_v, v[:, :t]], 1)[:, -L:]
        return reads, keys, values

    def step(
        self, h: torch.Tensor, cache_k: torch.Tensor, cache_v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One position: ``h`` (B, D) against the cached window (slot j has lag L - j)."""
        q = self.query(h)
        scores = torch.matmul(cache_k, q.unsqueeze(-1)).squeeze(-1) * self.scale
        weights = torch.softmax(scores + self.lag_bias.flip(0), dim=-1)
        read = torch.matmul(weights.unsqueeze(1), cache_v).squeeze(1)
        keys = torch.cat([cache_k[:, 1:], self.key(h).unsqueeze(1)], 1)
        values = torch.cat([cache_v[:, 1:], h.unsqueeze(1)], 1)
        return read, keys, values


class MagentaAttentionLSTM(nn.Module):
    """An LSTM layer wrapped like TF's ``AttentionCellWrapper`` (Magenta's attention_rnn).

    Per step: ``input = W [x_t, attns]``; LSTM cell; additive attention with query ``(c, h)`` over
    the window of the last L outputs; ``output = W [h, read]``; the output joins the window. The
    read of step t feeds step t + 1, so this cannot run in parallel over time.
    """

    def __init__(self, input_size: int, hidden: int, length: int) -> None:
        super().__init__()
        self.hidden, self.length = hidden, length
        self.in_proj = nn.Linear(input_size + hidden, input_size)
        self.cell = nn.LSTMCell(input_size, hidden)
        self.attn_key = nn.Linear(hidden, hidden, bias=False)
        self.attn_query = nn.Linear(2 * hidden, hidden)
        self.attn_v = nn.Parameter(torch.empty(hidden).uniform_(-(hidden**-0.5), hidden**-0.5))
        self.out_proj = nn.Linear(2 * hidden, hidden)
        _forget_bias_one(self.cell.bias_ih, self.cell.bias_hh, hidden)

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> State:
        z = torch.zeros(batch, self.hidden, device=device, dtype=dtype)
        w = torch.zeros(batch, self.length, self.hidden, device=device, dtype=dtype)
        return {"h0": z, "c0": z.clone(), "attns": z.clone(), "window": w, "window_keys": w.clone()}

    def _step(self, x_proj: torch.Tensor, s: State) -> tuple[torch.Tensor, State]:
        n_in = self.in_proj.in_features - self.hidden
        inp = x_proj + F.linear(s["attns"], self.in_proj.weight[:, n_in:])
        h, c = self.cell(inp, (s["h0"], s["c0"]))
        query = self.attn_query(torch.cat([c, h], -1))
        scores = (self.attn_v * torch.tanh(s["window_keys"] + query.unsqueeze(1))).sum(-1)
        weights = torch.softmax(scores, dim=-1)
        read = torch.matmul(weights.unsqueeze(1), s["window"]).squeeze(1)
        out = self.out_proj(torch.cat([h, read], -1))
        window = torch.cat([s["window"][:, 1:], out.unsqueeze(1)], 1)
        keys = torch.cat([s["window_keys"][:, 1:], self.attn_key(out).unsqueeze(1)], 1)
        return out, {"h0": h, "c0": c, "attns": read, "window": window, "window_keys": keys}

    def forward(self, x: torch.Tensor, s: State) -> tuple[torch.Tensor, State]:
        n_in = self.in_proj.in_features - self.hidden
        x_proj = F.linear(x, self.in_proj.weight[:, :n_in], self.in_proj.bias)  # all steps at once
        outs = []
        for t in range(x.shape[1]):
            out, s = self._step(x_proj[:, t], s)
            outs.append(out)
        return torch.stack(outs, 1), s


def _forget_bias_one(bias_ih: torch.Tensor, bias_hh: torch.Tensor, hidden: int) -> None:
    """Forget-gate bias 1.0, as TF's BasicLSTMCell (``forget_bias=1.0``) that Magenta uses."""
    with torch.no_grad():
        bias_ih[hidden : 2 * hidden].fill_(1.0)
        bias_hh[hidden : 2 * hidden].zero_()


class EventRNN(nn.Module):
    """Stacked LSTM + optional attention + linear head, configured by a variant (+ hparams).

    ``encoding`` is kept as a plain attribute (not a submodule, no parameters) so training and
    generation compute features with the same object the model was built for.
    """

    def __init__(
        self, config: VariantConfig, hparams: HParams | None = None, attention: str = "parallel"
    ) -> None:
        super().__init__()
        if attention not in ATTENTION_MODES:
            raise ValueError(
                f"attention must be one of {', '.join(ATTENTION_MODES)}, got {attention!r}"
            )
        hp = hparams or config.hparams
        self.variant = config.name
        self.family = config.family
        self.encoding: Encoding = config.encoding
        self.hparams = hp
        self.input_size = int(config.encoding.input_size)
        self.num_classes = int(config.encoding.num_classes)
        self.attention_mode = attention if hp.attn_length > 0 else "none"
        sizes = list(hp.rnn_layer_sizes)
        self.drop = Dropout(1.0 - hp.dropout_keep_prob)
        self.first: MagentaAttentionLSTM | None = None
        self.attn: WindowAttention | None = None
        layers = []
        in_size = self.input_size
        for i, size in enumerate(sizes):
            if i == 0 and self.attention_mode == "sequential":
                self.first = MagentaAttentionLSTM(in_size, size, hp.attn_length)
            else:
                lstm = nn.LSTM(in_size, size, batch_first=True)
                _forget_bias_one(lstm.bias_ih_l0, lstm.bias_hh_l0, size)
                layers.append(lstm)
            in_size = size
        self.lstms = nn.ModuleList(layers)
        head_in = sizes[-1]
        if self.attention_mode == "parallel":
            self.attn = WindowAttention(sizes[-1], hp.attn_length)
            head_in = 2 * sizes[-1]
        self.head = nn.Linear(head_in, self.num_classes)
        self.terms: nn.Module | None = None
        if hp.output_terms:
            make = getattr(self.encoding, "output_terms", None)
            if make is None:
                raise ValueError(
                    f"output_terms=true needs an encoding with logit terms (the performance "
                    f"family's); {config.name} has none"
                )
            self.terms = make()

    # ------------------------------------------------------------------ state

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """Zero LSTM states and an all-zero attention window (Magenta's initial state)."""
        p = next(self.parameters())
        device = torch.device(device) if device is not None else p.device
        state: State = {}
        if self.first is not None:
            state.update(self.first.initial_state(batch_size, device, p.dtype))
        offset = 1 if self.first is not None else 0
        for i, lstm in enumerate(self.lstms):
            z = torch.zeros(batch_size, lstm.hidden_size, device=device, dtype=p.dtype)
            state[f"h{i + offset}"], state[f"c{i + offset}"] = z, z.clone()
        if self.attn is not None:
            state["attn_k"], state["attn_v"] = self.attn.initial_cache(batch_size, device, p.dtype)
        return state

    @staticmethod
    def select_state(state: State, index: torch.Tensor) -> State:
        """Reorder/duplicate the batch rows of ``state`` (beam search)."""
        return {k: v.index_select(0, index) for k, v in state.items()}

    # ------------------------------------------------------------------ compute

    def _recurrent(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """The LSTM stack (dropout after every layer): top outputs (B, T, H) and new states."""
        new: State = {}
        h = x
        offset = 0
        if self.first is not None:
            keys = ("h0", "c0", "attns", "window", "window_keys")
            h, s = self.first(h, {k: state[k] for k in keys})
            new.update(s)
            h = self.drop(h)
            offset = 1
        for i, lstm in enumerate(self.lstms):
            n = i + offset
            hx = (
                state[f"h{n}"].unsqueeze(0).contiguous(),
                state[f"c{n}"].unsqueeze(0).contiguous(),
            )
            h, (hn, cn) = lstm(h, hx)
            new[f"h{n}"], new[f"c{n}"] = hn.squeeze(0), cn.squeeze(0)
            h = self.drop(h)
        return h, new

    def forward(
        self, x: torch.Tensor, state: State | None = None, return_state: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, State]:
        """Logits (B, T, num_classes) for features ``x`` (B, T, input_size).

        ``state`` continues from an earlier call (priming then stepping); ``return_state`` also
        returns the state after the last position. Position t never depends on positions > t.
        """
        if state is None:
            state = self.initial_state(x.shape[0], x.device)
        h, new = self._recurrent(x, state)
        if self.attn is not None:
            reads, new["attn_k"], new["attn_v"] = self.attn(h, state["attn_k"], state["attn_v"])
            h = torch.cat([h, reads], -1)
        logits = self.head(h)
        if self.terms is not None:
            logits = self.terms(x, logits)
        return (logits, new) if return_state else logits

    def step(self, x_t: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """One generation step: features (B, input_size) -> logits (B, num_classes), new state.

        Gives the logits :meth:`forward` gives at that position; the attention window is a
        cache of the last ``attn_length`` keys/values, so a step costs O(L), not O(t).
        """
        if x_t.dim() == 3:
            x_t = x_t[:, -1]
        if state is None:
            state = self.initial_state(x_t.shape[0], x_t.device)
        h, new = self._recurrent(x_t.unsqueeze(1), state)
        top = h[:, 0]
        if self.attn is not None:
            read, new["attn_k"], new["attn_v"] = self.attn.step(
                top, state["attn_k"], state["attn_v"]
            )
            top = torch.cat([top, read], -1)
        logits = self.head(top)
        if self.terms is not None:
            logits = self.terms(x_t.unsqueeze(1), logits.unsqueeze(1)).squeeze(1)
        return logits, new

    # ------------------------------------------------------------------ description

    def describe(self) -> dict:
        """JSON-ready architecture description (stored beside weights in every checkpoint)."""
        from modeling.hparams import hparams_to_dict

        return {
            "variant": self.variant,
            "family": self.family,
            "encoding": getattr(self.encoding, "name", type(self.encoding).__name__),
            "event_space": self.encoding.event_space,
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "hparams": hparams_to_dict(self.hparams),
            "attention": self.attention_mode,
            "num_parameters": sum(p.numel() for p in self.parameters()),
        }
