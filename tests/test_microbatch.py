"""Micro-batches: long sequences are trained in budget-sized pieces with the full batch's update.

Polyphony's full-profile examples reach 6,482 events; 64 of them in one batch took 22 GB at
Magenta's [256, 256, 256]. ``--max-batch-events`` cuts such a batch into pieces of at most that
many padded events and accumulates their gradients, so the update equals one backward of the
whole batch while memory follows the budget.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _examples import write_example_set

from modeling import checkpoint as ckpt
from modeling import train
from modeling.data import eval_micro_batches, micro_batches, shard_rows


@pytest.mark.parametrize("world", [1, 2, 3])
def test_every_rank_gets_the_same_number_of_pieces_within_budget(world: int) -> None:
    rng = np.random.default_rng(3)
    lengths = rng.integers(10, 700, size=200)
    batch = rng.permutation(200)[:64]
    budget = 2000
    pieces = [micro_batches(batch, lengths, r, world, budget) for r in range(world)]
    assert len({len(p) for p in pieces}) == 1 and len(pieces[0]) > 1
    for r, groups in enumerate(pieces):
        assert sorted(np.concatenate(groups)) == sorted(shard_rows(batch, r, world))
        for g in groups:  # a piece pads past the budget only when it is one example
            assert len(g) * lengths[g].max() <= budget or len(g) == 1
    off = micro_batches(batch, lengths, 0, 1, 0)
    assert len(off) == 1 and np.array_equal(off[0], batch)
    whole = eval_micro_batches(batch, lengths, budget)
    assert sorted(np.concatenate(whole)) == sorted(batch)
    assert all(len(g) * lengths[g].max() <= budget or len(g) == 1 for g in whole)


def _train(tmp: Path, ex: Path, name: str, budget: int) -> dict[str, torch.Tensor]:
    out = tmp / name
    code = train.main(
        [
            "--variant", "basic_rnn", "--examples", str(ex), "--output", str(out),
            "--hparams", "batch_size=8,rnn_layer_sizes=[16],dropout_keep_prob=1.0",
            "--num-steps", "3", "--eval-every", "3", "--no-mlflow", "--quiet",
            "--max-batch-events", str(budget),
        ]
    )  # fmt: skip
    assert code == 0
    return ckpt.load(out / "checkpoints" / "best.pt")["model"]


def test_accumulated_update_equals_the_whole_batch(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    ex = write_example_set(tmp_path / "ex", num_train=16, min_len=5, max_len=60)
    whole = _train(tmp_path, ex, "whole", 0)
    pieces = _train(tmp_path, ex, "pieces", 60)  # every batch of 8 is cut
    for key, value in whole.items():
        torch.testing.assert_close(pieces[key], value, rtol=1e-4, atol=1e-5)


def test_negative_budget_is_a_usage_error(tmp_path: Path) -> None:
    ex = write_example_set(tmp_path / "ex")
    code = train.main(
        ["--variant", "basic_rnn", "--examples", str(ex), "--output", str(tmp_path / "o"),
         "--no-mlflow", "--quiet", "--max-batch-events", "-1"]
    )  # fmt: skip
    assert code == 2 and not (tmp_path / "o").exists()
