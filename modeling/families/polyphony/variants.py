"""Polyphony RNN's one variant (Magenta's ``polyphony_model.default_configs``)."""

from __future__ import annotations

from modeling.families.base import HParams, VariantConfig, variant_table
from modeling.families.onehot import OneHot
from modeling.families.polyphony.encoding import StepContext
from modeling.families.polyphony.extract import EVENT_SPACE, NAME, NUM_CLASSES

POLYPHONY_ONE_HOT = OneHot(name="polyphony", event_space=EVENT_SPACE, num_classes=NUM_CLASSES)
# Magenta's one-hot plus the last step's pitches, the step so far and the recent pitch classes
# (:class:`StepContext`): what a small model otherwise forgets (voices, key).
POLYPHONY = StepContext(POLYPHONY_ONE_HOT)

VARIANTS: dict[str, VariantConfig] = variant_table(
    NAME,
    (
        "polyphony",
        POLYPHONY,
        HParams(
            batch_size=64, rnn_layer_sizes=(256, 256, 256), dropout_keep_prob=0.5, clip_norm=5.0
        ),
        "Polyphony RNN: START/END/STEP_END, NEW_NOTE x128, CONTINUED_NOTE x128",
    ),
)
