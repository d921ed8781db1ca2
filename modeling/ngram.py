"""The n-gram baseline of the quality bar: interpolated modified Kneser-Ney over stored events.

How it connects. :func:`ngram_baseline` is what :mod:`modeling.evaluation` calls per example set
(through :mod:`modeling.quality`, which re-exports this module's names and compares the RNN's
eval perplexity with the result, :data:`modeling.quality.NGRAM_MARGIN`). The model counts a
set's *stored events* (the classes the RNN's loss is computed on), fitted on the train split and
scored on exactly the label positions ``modeling.train.evaluate`` scores (every event of an
example but its first), its order chosen on the eval split. Counting and lookup are vectorised:
an n-gram is one int64 key (base ``vocabulary + 1``, the extra symbol pads the start of each
example), tables are sorted unique keys, queries are ``np.searchsorted``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_ORDER = 12
"""Highest n-gram order tried, lowered to what int64 keys hold (11 for melody, 7 for
performance and polyphony vocabularies)."""


def _discounts(counts: np.ndarray) -> np.ndarray:
    """Modified Kneser-Ney discounts (D1, D2, D3+) from count-of-counts (Chen & Goodman 1998).

    Tiny tables lack some count classes; missing estimates fall back to the one below, and each
    D_r is kept in [0.1, r] so every seen context leaves mass for unseen events.
    """
    n1, n2, n3, n4 = (float(np.sum(counts == r)) for r in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2) if n1 + 2 * n2 > 0 else 0.5
    d1 = 1 - 2 * y * n2 / n1 if n1 > 0 else y
    d2 = 2 - 3 * y * n3 / n2 if n2 > 0 else d1
    d3 = 3 - 4 * y * n4 / n3 if n3 > 0 else d2
    out = np.nan_to_num(np.array([d1, d2, d3]), nan=0.5)
    return np.clip(out, 0.1, np.array([1.0, 2.0, 3.0]))


@dataclass
class _Level:
    """One order's table: sorted gram keys with discounted counts, and per context its total
    count and back-off weight numerator (the discount mass it gives to the lower order)."""

    grams: np.ndarray
    discounted: np.ndarray
    contexts: np.ndarray
    totals: np.ndarray
    backoff: np.ndarray
    base: int

    @classmethod
    def build(cls, grams: np.ndarray, counts: np.ndarray, base: int) -> _Level:
        d = _discounts(counts)
        disc = d[np.minimum(counts, 3) - 1] if len(counts) else np.zeros(0)
        contexts, start = np.unique(grams // base, return_index=True)  # grams are sorted
        totals = np.add.reduceat(counts.astype(np.float64), start) if len(start) else np.zeros(0)
        backoff = np.add.reduceat(disc, start) if len(start) else np.zeros(0)
        return cls(grams, np.maximum(counts - disc, 0.0), contexts, totals, backoff, base)

    def prob(self, keys: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """P(event | context) of each query key, interpolated with the lower order's ``lower``;
        an unseen context passes ``lower`` through."""
        if len(self.grams) == 0:
            return lower
        ctx = keys // self.base
        i = np.minimum(np.searchsorted(self.contexts, ctx), len(self.contexts) - 1)
        seen = self.contexts[i] == ctx
        j = np.minimum(np.searchsorted(self.grams, keys), len(self.grams) - 1)
        count = np.where(self.grams[j] == keys, self.discounted[j], 0.0)
        total = np.where(seen, self.totals[i], 1.0)
        return np.where(seen, (count + self.backoff[i] * lower) / total, lower)


def _padded(events: np.ndarray, offsets: np.ndarray, pad: int, bos: int) -> tuple[np.ndarray, ...]:
    """(sequence with ``pad`` start symbols before each example, positions of its labels).

    Labels are every event but the first of each example: the positions the RNN is scored on.
    """
    lengths = np.diff(offsets)
    n = len(lengths)
    owner = np.repeat(np.arange(n), lengths)
    within = np.arange(int(offsets[-1])) - np.repeat(offsets[:-1], lengths)
    pos = offsets[:-1][owner] + pad * (owner + 1) + within
    seq = np.full(int(offsets[-1]) + pad * n, bos, np.int64)
    seq[pos] = events
    return seq, pos[within >= 1]


class KneserNey:
    """Interpolated modified Kneser-Ney over stored event sequences, every order up to ``order``.

    The top order counts n-grams; lower orders count distinct left extensions (continuation
    counts), as KN prescribes. :meth:`nll` scores all orders 1..``order`` in one pass, since
    order k's model is order k's raw counts over orders < k's continuation chain.
    """

    def __init__(self, vocabulary: int, order: int = MAX_ORDER) -> None:
        if vocabulary < 1:
            raise ValueError(f"vocabulary must be >= 1, got {vocabulary}")
        self.vocabulary = int(vocabulary)
        self.base = self.vocabulary + 1  # + the start symbol
        fits = math.floor(62 * math.log(2) / math.log(self.base))
        self.order = max(1, min(int(order), fits))
        self.raw: list[_Level] = []
        self.cont: list[_Level] = []
        self.train_labels = 0

    def _check(self, events: np.ndarray) -> np.ndarray:
        ev = np.asarray(events, np.int64)
        if len(ev) and (int(ev.min()) < 0 or int(ev.max()) >= self.vocabulary):
            raise ValueError(f"event index outside 0..{self.vocabulary - 1}")
        return ev

    def _keys(self, seq: np.ndarray, targets: np.ndarray) -> Any:
        """Gram keys of orders 1, 2, ... ending at ``targets`` (oldest symbol most significant)."""
        key = np.zeros(len(targets), np.int64)
        for k in range(1, self.order + 1):
            key = key + seq[targets - k + 1] * np.int64(self.base ** (k - 1))
            yield k, key

    def fit(self, events: np.ndarray, offsets: np.ndarray) -> KneserNey:
        """Count every order on the labels of one split (flat events + offsets)."""
        seq, targets = _padded(self._check(events), offsets, self.order - 1, self.vocabulary)
        self.train_labels = len(targets)
        uniques: list[tuple[np.ndarray, np.ndarray]] = []
        for _, key in self._keys(seq, targets):
            uniques.append(np.unique(key, return_counts=True))
        self.raw = [_Level.build(g, c, self.base) for g, c in uniques]
        self.cont = []
        for k in range(1, self.order):
            suffix = uniques[k][0] % np.int64(self.base**k)  # order k+1 grams minus oldest
            g, c = np.unique(suffix, return_counts=True)
            self.cont.append(_Level.build(g, c, self.base))
        return self

    def nll(self, events: np.ndarray, offsets: np.ndarray) -> tuple[dict[int, float], int]:
        """({order: summed negative log-likelihood in nats}, number of labels) of a split."""
        seq, targets = _padded(self._check(events), offsets, self.order - 1, self.vocabulary)
        lower = np.full(len(targets), 1.0 / self.vocabulary)
        out: dict[int, float] = {}
        for k, key in self._keys(seq, targets):
            top = self.raw[k - 1].prob(key, lower)
            out[k] = float(-np.log(top).sum())
            if k < self.order:
                lower = self.cont[k - 1].prob(key, lower)
        return out, len(targets)

    def probabilities(self, context: Sequence[int], order: int) -> np.ndarray:
        """P(every event | ``context``) under the order-``order`` model (tests: sums to 1)."""
        padded = [self.vocabulary] * (self.order - 1) + [int(c) for c in context]
        rows = [[*padded, w] for w in range(self.vocabulary)]
        seq = np.asarray(rows, np.int64).reshape(-1)
        width = len(padded) + 1
        targets = np.arange(self.vocabulary) * width + width - 1
        lower = np.full(self.vocabulary, 1.0 / self.vocabulary)
        for k, key in self._keys(seq, targets):
            if k == order:
                return self.raw[k - 1].prob(key, lower)
            lower = self.cont[k - 1].prob(key, lower)
        raise ValueError(f"order must be in 1..{self.order}, got {order}")


NGRAM_MAX_TRAIN_EVENTS = 20_000_000
"""The n-gram is fitted on at most this many train events (whole examples, a seeded sample):
counting every order of the full profile's 263M augmented performance events took over 21 GB."""


def sample_examples(
    events: np.ndarray, offsets: np.ndarray, max_events: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Whole examples, in a seeded random order, until ``max_events`` (all of them if fewer)."""
    lengths = np.diff(offsets)
    if int(lengths.sum()) <= max_events:
        return events, offsets
    order = np.random.default_rng(seed).permutation(len(lengths))
    keep = np.sort(order[np.cumsum(lengths[order]) <= max_events])
    parts = [events[offsets[i] : offsets[i + 1]] for i in keep]
    new_offsets = np.concatenate([[0], np.cumsum(lengths[keep])]).astype(np.int64)
    flat = np.concatenate(parts) if parts else events[:0]
    return flat, new_offsets


def ngram_baseline(
    train: Any,
    eval_: Any,
    vocabulary: int,
    max_order: int = MAX_ORDER,
    max_train_events: int = NGRAM_MAX_TRAIN_EVENTS,
) -> dict[str, Any] | None:
    """The n-gram baseline of one example set: fit on ``train``, order chosen on ``eval_``.

    ``train`` / ``eval_`` are :class:`modeling.data.ExampleSplit` (flat events + offsets). None
    when the train split has no label (an eval-only set): there is nothing to fit. A train split
    over ``max_train_events`` is fitted on a seeded sample of its examples (memory is linear in
    the events counted); ``train_events_used`` says how many.
    """
    import time

    started = time.perf_counter()
    events, offsets = sample_examples(train.events, train.offsets, max_train_events)
    model = KneserNey(vocabulary, max_order).fit(events, offsets)
    if model.train_labels == 0:
        return None
    sums, labels = model.nll(eval_.events, eval_.offsets)
    if labels == 0:
        return None
    by_order = {k: math.exp(v / labels) for k, v in sums.items()}
    best = min(by_order, key=lambda k: by_order[k])
    return {
        "order": best,
        "loss": sums[best] / labels,
        "perplexity": by_order[best],
        "perplexity_by_order": {str(k): v for k, v in by_order.items()},
        "labels": labels,
        "train_labels": model.train_labels,
        "train_events_used": len(events),
        "train_events": len(train.events),
        "seconds": time.perf_counter() - started,
    }
