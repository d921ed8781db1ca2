"""EventRNN: step API == full forward, exact causality, windowed attention == a naive reference,
dropout on every layer's output, state continuation (priming)."""

from __future__ import annotations

import pytest
import torch
from _models import assert_step_matches_forward

from modeling.families.base import HParams, VariantConfig
from modeling.families.onehot import OneHot
from modeling.model import EventRNN, WindowAttention
from modeling.variants import get_variant

torch.set_num_threads(1)

ENC = OneHot(name="onehot", event_space="test:11", num_classes=11)


def _config(
    attn_length: int = 0, sizes: tuple[int, ...] = (16, 12), keep: float = 1.0
) -> VariantConfig:
    hp = HParams(
        batch_size=4, rnn_layer_sizes=sizes, attn_length=attn_length, dropout_keep_prob=keep
    )
    return VariantConfig("toy", "melody", ENC, hp)


CASES = [
    pytest.param(0, "parallel", id="no-attention"),
    pytest.param(5, "parallel", id="parallel-attention"),
    pytest.param(5, "sequential", id="magenta-sequential-attention"),
]


def _events(b: int = 3, t: int = 23, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 11, (b, t), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("attn", "mode"), CASES)
def test_step_matches_forward(attn: int, mode: str) -> None:
    torch.manual_seed(0)
    model = EventRNN(_config(attn), attention=mode).eval()
    assert_step_matches_forward(model, ENC.inputs(_events(), {}))


@pytest.mark.parametrize(("attn", "mode"), CASES)
def test_forward_with_state_continues(attn: int, mode: str) -> None:
    """Priming on a prefix then continuing gives the logits of one pass over the whole."""
    torch.manual_seed(1)
    model = EventRNN(_config(attn), attention=mode).eval()
    x = ENC.inputs(_events(t=29), {})
    with torch.no_grad():
        full = model(x)
        head, state = model(x[:, :13], return_state=True)
        tail = model(x[:, 13:], state)
        step_logits, _ = model.step(x[:, 13], state)
    torch.testing.assert_close(torch.cat([head, tail], 1), full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(step_logits, full[:, 13], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("attn", "mode"), CASES)
def test_exactly_causal(attn: int, mode: str) -> None:
    """Changing event k never changes a logit before position k (bit for bit)."""
    torch.manual_seed(2)
    model = EventRNN(_config(attn), attention=mode).eval()
    events = _events(t=31)
    with torch.no_grad():
        base = model(ENC.inputs(events, {}))
        for k in (0, 4, 5, 12, 30):
            changed = events.clone()
            changed[:, k] = (changed[:, k] + 3) % 11
            out = model(ENC.inputs(changed, {}))
            assert torch.equal(out[:, :k], base[:, :k]), k
            assert not torch.allclose(out[:, k], base[:, k])


def _naive_window(att: WindowAttention, h: torch.Tensor) -> torch.Tensor:
    """Reference: position t attends to L slots t-L..t-1, slots before 0 holding zero vectors."""
    b, t, d = h.shape
    L = att.length
    padded = torch.cat([torch.zeros(b, L, d), h], 1)
    keys = torch.cat([torch.zeros(b, L, d), att.key(h)], 1)
    reads = []
    for i in range(t):
        win_k, win_v = keys[:, i : i + L], padded[:, i : i + L]  # absolute positions i-L .. i-1
        lags = torch.arange(L, 0, -1)
        scores = (win_k @ att.query(h[:, i]).unsqueeze(-1)).squeeze(-1) * att.scale
        scores = scores + att.lag_bias[lags - 1]
        reads.append((torch.softmax(scores, -1).unsqueeze(1) @ win_v).squeeze(1))
    return torch.stack(reads, 1)


@pytest.mark.parametrize("length", [1, 4, 7])
def test_window_attention_matches_naive_reference(length: int) -> None:
    torch.manual_seed(3)
    att = WindowAttention(6, length)
    with torch.no_grad():
        att.lag_bias.normal_()
        h = torch.randn(2, 17, 6)
        cache = att.initial_cache(2, torch.device("cpu"), torch.float32)
        reads, keys, values = att(h, *cache)
        ref = _naive_window(att, h)
    torch.testing.assert_close(reads, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values, h[:, -length:])
    torch.testing.assert_close(keys, att.key(h[:, -length:]).detach())


def test_dropout_on_every_layer_output() -> None:
    """Magenta's DropoutWrapper drops each cell's output, the top one included."""
    torch.manual_seed(4)
    model = EventRNN(_config(0, sizes=(32, 32), keep=0.5))
    seen: dict[str, torch.Tensor] = {}
    model.lstms[1].register_forward_pre_hook(lambda m, a: seen.__setitem__("l1_in", a[0]))
    model.head.register_forward_pre_hook(lambda m, a: seen.__setitem__("head_in", a[0]))
    x = ENC.inputs(_events(b=8, t=40), {})
    model.train()
    model(x)
    for key in ("l1_in", "head_in"):
        zero_frac = float((seen[key] == 0).float().mean())
        assert 0.4 < zero_frac < 0.6, (key, zero_frac)
    model.eval()
    model(x)
    assert float((seen["head_in"] == 0).float().mean()) < 0.01
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x))


def test_real_variants_build_and_step() -> None:
    """The families' variants (one-hot, key-melody + attention, chords, controls) all run."""
    for name in (
        "basic_rnn",
        "attention_rnn",
        "polyphony",
        "performance_with_dynamics",
        "chord_pitches_improv",
    ):
        cfg = get_variant(name)
        hp = cfg.hparams.override(rnn_layer_sizes=(8, 8))
        model = EventRNN(cfg, hp).eval()
        desc = model.describe()
        assert desc["input_size"] == cfg.encoding.input_size
        assert desc["num_classes"] == cfg.encoding.num_classes
        assert desc["attention"] == ("parallel" if cfg.hparams.attn_length else "none")
        x = torch.randn(2, 5, cfg.encoding.input_size)
        logits, state = model.step(x[:, 0])
        assert logits.shape == (2, cfg.encoding.num_classes)
        swapped = EventRNN.select_state(state, torch.tensor([1, 0]))
        for k, v in state.items():
            torch.testing.assert_close(swapped[k], v.flip(0))


def test_encoding_is_plain_attribute() -> None:
    model = EventRNN(_config(5))
    assert model.encoding is ENC
    assert "encoding" not in dict(model.named_children())
    assert not any(k.startswith("encoding") for k in model.state_dict())


def test_rejects_unknown_attention_mode() -> None:
    with pytest.raises(ValueError, match="attention must be one of"):
        EventRNN(_config(5), attention="fast")


def test_variants_merged_from_every_family() -> None:
    from modeling import variants

    assert not variants.FAMILY_ERRORS
    needed = {
        "basic_rnn",
        "attention_rnn",
        "polyphony",
        "performance_with_dynamics",
        "chord_pitches_improv",
    }
    assert needed <= set(variants.VARIANTS)
    assert {v.family for v in variants.VARIANTS.values()} == {
        "melody",
        "improv",
        "polyphony",
        "performance",
    }
    with pytest.raises(variants.UnknownVariantError) as info:
        variants.get_variant("attention_rn")
    message = str(info.value)
    assert message.startswith("unknown variant 'attention_rn'; valid: ")
    assert all(name in message for name in needed)
