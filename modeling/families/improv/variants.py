"""Improv RNN variants (Magenta's ``improv_rnn_model.default_configs``)."""

from __future__ import annotations

from modeling.families.base import HParams, VariantConfig, variant_table
from modeling.families.improv.encoding import ChordConditioned, PitchChords, TriadChords
from modeling.families.improv.extract import NAME
from modeling.families.melody.encoding import KeyMelody, melody_onehot

# The two triad models also see the chord's pitch classes after Magenta's columns
# (``chord_tones``: the notes of the chord they are told, which a small model otherwise fails to
# work out in every key; see :class:`ChordConditioned`).
_BASIC_HPARAMS = HParams(
    batch_size=128, rnn_layer_sizes=(64, 64), dropout_keep_prob=0.5, clip_norm=5.0
)
# ... and add twelve learned chord-interval terms to their pitch logits (``output_terms``,
# :mod:`modeling.families.pitch_terms`).
_TERMS_HPARAMS = _BASIC_HPARAMS.override(output_terms=True)

VARIANTS: dict[str, VariantConfig] = variant_table(
    NAME,
    (
        "basic_improv",
        ChordConditioned("triad+onehot", TriadChords(), melody_onehot(48, 84), chord_tones=True),
        _TERMS_HPARAMS,
        "Melody-given-chords RNN with one-hot triad encoding for chords "
        "(needs a set extracted with triad_chords_only).",
    ),
    (
        "attention_improv",
        ChordConditioned(
            "triad+key_melody", TriadChords(), KeyMelody(), chord_tones=True, repeat_tones=True
        ),
        _TERMS_HPARAMS.override(rnn_layer_sizes=(128, 128, 128), attn_length=40, clip_norm=3.0),
        "Melody-given-chords RNN with triad chords, key-melody features and "
        "attention (needs a set extracted with triad_chords_only).",
    ),
    (
        "chord_pitches_improv",
        ChordConditioned("pitch_chords+onehot", PitchChords(), melody_onehot(48, 84)),
        _BASIC_HPARAMS.override(rnn_layer_sizes=(256, 256, 256), clip_norm=3.0),
        "Melody-given-chords RNN with chord root, pitch classes and bass.",
    ),
)
