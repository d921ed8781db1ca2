"""Performance RNN variants (Magenta's ``performance_model.default_configs``)."""

from __future__ import annotations

from modeling.families.base import HParams, VariantConfig, variant_table
from modeling.families.onehot import OneHot
from modeling.families.performance.config import NAME, event_space_name, num_classes
from modeling.families.performance.encoding import ControlledPerformance, HeldNotes

_HPARAMS = HParams(
    batch_size=64, rnn_layer_sizes=(512, 512, 512), dropout_keep_prob=1.0, output_terms=True
)

# Every variant also sees the notes it holds (:class:`HeldNotes`): Magenta's inputs plus
# 2 x 128 columns (per pitch, notes held and seconds since the newest began), the same events
# and labels; ``output_terms`` adds the release and time-shift terms that read those columns
# (:mod:`.terms`).
PERFORMANCE = HeldNotes(OneHot("performance", event_space_name(0), num_classes(0)))
PERFORMANCE_WITH_DYNAMICS = HeldNotes(
    OneHot("performance_with_dynamics", event_space_name(32), num_classes(32))
)
DENSITY_CONDITIONED = HeldNotes(
    ControlledPerformance("density_conditioned", density=True, density_value=True)
)
PITCH_CONDITIONED = HeldNotes(ControlledPerformance("pitch_conditioned", histogram=True))
MULTICONDITIONED = HeldNotes(
    ControlledPerformance("multiconditioned", density=True, histogram=True, density_value=True)
)

VARIANTS: dict[str, VariantConfig] = variant_table(
    NAME,
    (
        "performance",
        PERFORMANCE,
        _HPARAMS,
        "NOTE_ON/NOTE_OFF x128, TIME_SHIFT x100 (10 ms), no velocity",
    ),
    ("performance_with_dynamics", PERFORMANCE_WITH_DYNAMICS, _HPARAMS, "+ VELOCITY x32 bins"),
    (
        "density_conditioned_performance_with_dynamics",
        DENSITY_CONDITIONED,
        _HPARAMS,
        "conditioned on notes per second over 3 s (8 bins)",
    ),
    (
        "pitch_conditioned_performance_with_dynamics",
        PITCH_CONDITIONED,
        _HPARAMS,
        "conditioned on the pitch-class histogram over 5 s",
    ),
    (
        "multiconditioned_performance_with_dynamics",
        MULTICONDITIONED,
        _HPARAMS,
        "conditioned on note density and pitch-class histogram",
    ),
)
