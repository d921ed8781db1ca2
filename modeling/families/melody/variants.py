"""Melody RNN variants (Magenta's ``melody_rnn_model.default_configs``) and the EDM variant."""

from __future__ import annotations

from modeling.families.base import HParams, VariantConfig, variant_table
from modeling.families.melody.encoding import KeyMelody, MelodyLookback, melody_onehot
from modeling.families.melody.extract import NAME

_MELODY_HPARAMS = HParams(
    batch_size=128, rnn_layer_sizes=(128, 128), dropout_keep_prob=0.5, clip_norm=5.0
)
# The key-melody models also add learned key terms to their pitch logits (``output_terms``:
# twelve weights per key column, :mod:`modeling.families.pitch_terms`); not Magenta's.
_ATTENTION_HPARAMS = _MELODY_HPARAMS.override(attn_length=40, clip_norm=3.0, output_terms=True)

VARIANTS: dict[str, VariantConfig] = variant_table(
    NAME,
    (
        "basic_rnn",
        melody_onehot(48, 84),
        _MELODY_HPARAMS,
        "Melody RNN with one-hot encoding (pitches 48-83, transposed to C).",
    ),
    (
        "mono_rnn",
        melody_onehot(0, 128),
        _MELODY_HPARAMS,
        "Monophonic RNN with one-hot encoding over the full MIDI range, no key "
        "transposition (extract with MONO_EXTRACT).",
    ),
    (
        "lookback_rnn",
        MelodyLookback(),
        _MELODY_HPARAMS,
        "Melody RNN with lookback encoding (1- and 2-bar repeats, 5-bit counter).",
    ),
    (
        "attention_rnn",
        KeyMelody(),
        _ATTENTION_HPARAMS,
        "Melody RNN with key-melody encoding and attention over the last 40 steps.",
    ),
    (
        "edm_rnn",
        KeyMelody(),
        _ATTENTION_HPARAMS,
        "attention_rnn's encoding and hparams for EDM melodies; the EDM set is "
        "fine-tuned from an attention_rnn checkpoint (same event space).",
    ),
)
