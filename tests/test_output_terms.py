"""The output terms (``output_terms`` hparam). Performance: per-pitch NOTE_ON/NOTE_OFF tables
of (notes held, age) and TIME_SHIFT tables of the oldest note's age after the shift; triad
improv: twelve chord-interval weights on the pitch logits. Each starts as no term, step equals
forward, only its classes move; old checkpoints load without them."""

from __future__ import annotations

import pytest
import torch
from _models import assert_step_matches_forward

from modeling.families.performance.config import NOTE_OFF, NOTE_ON, TIME_SHIFT, VELOCITY
from modeling.hparams import hparams_from_dict, hparams_to_dict
from modeling.model import EventRNN
from modeling.variants import get_variant

torch.set_num_threads(1)


def _model(name: str = "performance_with_dynamics", terms: bool = True, seed: int = 0) -> EventRNN:
    torch.manual_seed(seed)
    cfg = get_variant(name)
    return EventRNN(cfg, cfg.hparams.override(rnn_layer_sizes=(16, 16), output_terms=terms))


def _randomise(module: torch.nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g))


def _performance_events(t: int = 120, seed: int = 0) -> torch.Tensor:
    """Random note-ons, note-offs of held pitches, shifts and velocities (a plausible stream)."""
    g = torch.Generator().manual_seed(seed)
    kinds = torch.randint(0, 4, (2, t), generator=g)
    pitch = torch.randint(60, 64, (2, t), generator=g)  # few pitches: releases and unisons
    shift = torch.randint(0, 100, (2, t), generator=g)
    vel = torch.randint(0, 32, (2, t), generator=g)
    return torch.stack(
        [NOTE_ON + pitch, NOTE_OFF + pitch, TIME_SHIFT + shift, VELOCITY + vel], -1
    ).gather(-1, kinds.unsqueeze(-1))[..., 0]


def test_terms_start_as_no_terms() -> None:
    """Zero last layers: a fresh model with terms gives the logits of the same model without."""
    plain, with_terms = _model(terms=False), _model(terms=True)
    with_terms.load_state_dict(plain.state_dict(), strict=False)
    x = with_terms.encoding.inputs(_performance_events(), {})
    with torch.no_grad():
        torch.testing.assert_close(with_terms(x), plain(x))


def test_step_matches_forward_with_terms() -> None:
    model = _model().eval()
    _randomise(model.terms)
    x = model.encoding.inputs(_performance_events(), {})
    full = assert_step_matches_forward(model, x)
    assert not torch.allclose(full, _model(terms=False)(x))  # the terms are in play


def test_terms_are_one_table_per_pitch_and_per_shift() -> None:
    """By hand: NOTE_ON(p)/NOTE_OFF(p) get the table entry of (notes held, age in steps),
    TIME_SHIFT of k steps gets the entry of (anything held, oldest age + k); velocities get
    nothing; an age past the tables' end reads their last entry."""
    model = _model()
    terms = model.terms
    _randomise(terms)
    pitch_table, shift_table = (t.detach() for t in terms.tables())
    enc = model.encoding
    x = torch.zeros(1, 1, enc.input_size)
    count, seconds = enc.base.input_size, enc.base.input_size + 128
    held = {60: (1, 0.5), 64: (1, 0.5), 67: (3, 1.75), 30: (0, 0.0)}
    for p, (c, s) in held.items():
        x[0, 0, count + p], x[0, 0, seconds + p] = c, s
    with torch.no_grad():
        delta = terms(x, torch.zeros(1, 1, enc.num_classes))[0, 0]
    for p, (c, s) in {**held, 100: (0, 0.0)}.items():
        row, age = min(c, 2), round(s * 100)
        assert float(delta[NOTE_ON + p]) == pytest.approx(float(pitch_table[row, 0, age]))
        assert float(delta[NOTE_OFF + p]) == pytest.approx(float(pitch_table[row, 1, age]))
    assert float(delta[NOTE_ON + 60]) == float(delta[NOTE_ON + 64])  # shared by pitches
    for k in (1, 25, 100):
        assert float(delta[TIME_SHIFT + k - 1]) == pytest.approx(float(shift_table[1, 175 + k]))
    assert torch.count_nonzero(delta[VELOCITY:]) == 0
    with torch.no_grad():  # nothing held: the other shift row, from age 0
        quiet = terms(torch.zeros(1, 1, enc.input_size), torch.zeros(1, 1, enc.num_classes))
    torch.testing.assert_close(quiet[0, 0, TIME_SHIFT:VELOCITY], shift_table[0, 1:101])
    x[0, 0, seconds + 67] = 9.0  # past the 5 s cap of the columns: the last entry
    with torch.no_grad():
        late = terms(x, torch.zeros(1, 1, enc.num_classes))[0, 0]
    assert float(late[NOTE_OFF + 67]) == pytest.approx(float(pitch_table[2, 1, -1]))


def test_an_age_the_data_never_reached_keeps_the_last_learned_value() -> None:
    """The tables are running sums of increments: pushing down the shifts that cross 2.0 s, up
    to 2.6 s (as training on data that never holds a note longer does), leaves every longer one
    at 2.6 s's value, not at the untrained 0."""
    terms = _model("performance").terms
    opt = torch.optim.SGD(terms.parameters(), lr=1.0)
    _, shift_table = terms.tables()
    shift_table[1, 201:260].sum().backward()  # the gradient of shifts crossing 2.0 s, up to 2.6
    opt.step()
    after = terms.tables()[1].detach()
    assert float(after[1, 300]) == float(after[1, 600]) == float(after[1, 259])  # 3 s, 6 s
    assert float(after[1, 259]) < float(after[1, 200]) < 0


def test_checkpoints_without_the_hparam_load_without_terms() -> None:
    """A checkpoint's hparams written before ``output_terms`` existed build the plain model."""
    old = hparams_to_dict(get_variant("performance").hparams)
    old.pop("output_terms")
    hp = hparams_from_dict(old)
    assert hp.output_terms is False
    model = EventRNN(get_variant("performance"), hp)
    assert model.terms is None
    assert not any(k.startswith("terms.") for k in model.state_dict())
    assert any(k.startswith("terms.") for k in _model("performance").state_dict())


def test_terms_need_an_encoding_that_has_them() -> None:
    cfg = get_variant("basic_rnn")
    with pytest.raises(ValueError, match="output_terms=true needs an encoding with logit terms"):
        EventRNN(cfg, cfg.hparams.override(output_terms=True))


def test_starting_from_weights_without_terms_computes_what_they_did() -> None:
    """``--init-from`` a checkpoint trained before the terms: the model gets fresh (zero) terms
    and gives the source's logits; a source with terms keeps its own."""
    from modeling import checkpoint as ckpt

    plain, with_terms = _model(terms=False), _model(terms=True, seed=3)
    state = ckpt.with_new_terms(plain.state_dict(), with_terms)
    ckpt.load_state(with_terms, state, "test")
    x = with_terms.encoding.inputs(_performance_events(), {})
    with torch.no_grad():
        torch.testing.assert_close(with_terms(x), plain(x))
    _randomise(with_terms.terms)
    trained = with_terms.state_dict()
    assert ckpt.with_new_terms(trained, _model(seed=4)) is trained


@pytest.mark.parametrize("name", ["basic_improv", "attention_improv"])
def test_chord_tone_terms_by_hand(name: str) -> None:
    """Improv: each pitch class p gets the sum over the chord's pitch classes j of
    weight[(p - j) % 12]; classes that play no pitch (no event, note off) get nothing; a repeat
    class gets the term of the pitch class its columns say it would play (attention_improv's
    ``repeat_tones``); step equals forward."""
    cfg = get_variant(name)
    torch.manual_seed(0)
    model = EventRNN(cfg, cfg.hparams.override(rnn_layer_sizes=(16, 16))).eval()
    terms = model.terms
    _randomise(terms)
    w = terms.weight.detach()[0]
    enc = cfg.encoding
    x = torch.zeros(1, 1, enc.input_size)
    chord = [0, 4, 7]  # C major's pitch classes in the chord-tone columns
    chord_col = enc.input_size - 12 - enc._repeat_columns
    x[0, 0, chord_col + torch.tensor(chord)] = 1.0
    from modeling.families.melody.encoding import class_pitches

    pitch = class_pitches(enc).copy()
    if enc.repeat_tones:  # repeat 1 bar ago would play an E, 2 bars ago a C#
        first = enc.num_classes - 2
        x[0, 0, chord_col + 12 + 4] = x[0, 0, chord_col + 24 + 1] = 1.0
        pitch[first : first + 2] = [64, 61]
    with torch.no_grad():
        delta = terms(x, torch.zeros(1, 1, enc.num_classes))[0, 0]
    for c in range(enc.num_classes):
        want = sum(float(w[(pitch[c] - j) % 12]) for j in chord) if pitch[c] >= 0 else 0.0
        assert float(delta[c]) == pytest.approx(want, abs=1e-5), c
    assert int((pitch >= 0).sum()) == 36 + 2 * enc.repeat_tones
    assert float(delta[pitch == 60][0]) == float(delta[pitch == 72][0])  # the same in every octave
    events = torch.randint(0, 38, (2, 20))  # stored melody events of 48..84: 36 pitches + 2
    from modeling.families.chords import COLUMN_DTYPES

    cond = {
        c: torch.randint(0, 4 if c != "chord_pitches" else 4096, (2, 21)) for c in COLUMN_DTYPES
    }
    cond = enc.conditions(events, {k: v.numpy() for k, v in cond.items()})
    assert_step_matches_forward(model, enc.inputs(events, cond))


def test_chord_tone_terms_need_the_chord_tone_columns() -> None:
    cfg = get_variant("chord_pitches_improv")
    with pytest.raises(ValueError, match="needs chord_tones columns"):
        EventRNN(cfg, cfg.hparams.override(output_terms=True))


def test_key_terms_read_both_key_columns() -> None:
    """attention_rnn: the keys fitting all notes so far and those fitting the last 3 pitches
    each add weight[(p - key) % 12] per marked key, with their own twelve weights."""
    from modeling.families.melody.encoding import class_pitches

    cfg = get_variant("attention_rnn")
    enc = cfg.encoding
    torch.manual_seed(0)
    model = EventRNN(cfg, cfg.hparams.override(rnn_layer_sizes=(16, 16), output_terms=True))
    _randomise(model.terms)
    w = model.terms.weight.detach()
    events = torch.tensor([[2 + 12, 2 + 16, 2 + 19, 0, 2 + 14, 1]])  # C E G, rest, D, off
    x = enc.inputs(events, {})
    all_keys, recent = x[0, -1, -24:-12], x[0, -1, -12:]
    assert 0 < int(all_keys.sum()) < 12 and 0 < int(recent.sum()) < 12  # the columns are these
    with torch.no_grad():
        delta = model.terms(x, torch.zeros(1, x.shape[1], enc.num_classes))[0, -1]
    pitch = class_pitches(enc)
    for c in range(enc.num_classes):
        want = 0.0
        if pitch[c] >= 0:
            want = sum(float(w[0, (pitch[c] - k) % 12]) for k in torch.nonzero(all_keys).flatten())
            want += sum(float(w[1, (pitch[c] - k) % 12]) for k in torch.nonzero(recent).flatten())
        assert float(delta[c]) == pytest.approx(want, abs=1e-5), c


MULTI = "multiconditioned_performance_with_dynamics"


def _multi_inputs(model: EventRNN, density: float = 3.0) -> torch.Tensor:
    events = _performance_events()
    c_major = [2, 0, 1, 0, 1, 1, 0, 2, 0, 1, 0, 1]
    cond = model.encoding.control_from_request(
        events, notes_per_second=density, pitch_class_histogram=c_major
    )
    return model.encoding.inputs(events, cond)


def test_control_terms_by_hand() -> None:
    """Multiconditioned: the density bin's row, and the density value times its per-class
    weights, add to every class; each NOTE_ON(p) gets
    ``sum_j share_j * weight[(p - j) mod 12]`` of the requested pitch-class shares; other
    classes get no histogram term; stepping still equals forward."""
    model = _model(MULTI).eval()
    _randomise(model.terms)
    controls = model.terms.controls
    x = torch.zeros(1, 1, model.encoding.input_size)
    x[0, 0, 3] = 1.0  # density bin 3: [4, 8) notes per second
    shares = torch.tensor([2, 0, 1, 0, 1, 1, 0, 2, 0, 1, 0, 1]) / 9
    x[0, 0, 8:20] = shares
    x[0, 0, 20] = 2.5  # log2(1 + density): the value column after Magenta's controls
    with torch.no_grad():
        delta = controls(x, torch.zeros(1, 1, model.encoding.num_classes))[0, 0]
        rest = delta - controls.bin_terms[3] - 2.5 * controls.value_terms
        weight = controls.histogram.weight[0].detach()
    for p in (0, 7, 61, 127):
        want = sum(float(shares[j] * weight[(p - j) % 12]) for j in range(12))
        assert float(rest[NOTE_ON + p]) == pytest.approx(want, abs=1e-5)
    assert float(rest[NOTE_OFF:].abs().max()) < 1e-5  # the histogram moves only NOTE_ONs
    assert_step_matches_forward(model, _multi_inputs(model))


def test_control_terms_start_at_zero_from_a_source_with_only_held_note_terms() -> None:
    """``--init-from`` a controlled checkpoint trained before the control terms: they start at
    zero, so the model computes what the source did."""
    from modeling import checkpoint as ckpt

    model = _model(MULTI, seed=5)
    old = {k: v for k, v in model.state_dict().items() if not k.startswith("terms.controls.")}
    _randomise(model.terms.controls)
    fresh = _model(MULTI, seed=6)
    ckpt.load_state(fresh, ckpt.with_new_terms(old, fresh), "test")
    assert all(
        torch.count_nonzero(v) == 0
        for k, v in fresh.state_dict().items()
        if k.startswith("terms.controls.")
    )
    x = _multi_inputs(fresh)
    with torch.no_grad():
        model.terms.controls = None  # the source: held-note terms only
        torch.testing.assert_close(fresh(x), model(x))
