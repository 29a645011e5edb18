"""The library behind the CIFAR-10 chapter: augmentation, the training loop with it, paired differences, the scorecard.

The chapter module's own pieces (schedule, colour front end, energy per channel) and sections are
tested in ``test_chapter_cifar10.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sparsenb.book import scorecard
from sparsenb.chapters import cifar10 as cifar
from sparsenb.checks import ArgumentError
from sparsenb.lab.paper import OTHER_SETTING, Comparison
from sparsenb.training import CropFlip, fit
from sparsenb.lab.timing import training_cost

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- augmentation
def test_crop_flip_takes_a_crop_of_the_padded_image_and_sometimes_mirrors_it():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 32, 32)
    y = CropFlip(4, flip=True)(x)
    padded = F.pad(x, (4, 4, 4, 4))
    flips = 0
    for i in range(len(x)):
        crops = [padded[i, :, a : a + 32, b : b + 32] for a in range(9) for b in range(9)]
        plain = any(torch.equal(y[i], c) for c in crops)
        mirrored = any(torch.equal(y[i], c.flip(-1)) for c in crops)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 16 < flips < 48  # about half, per image
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1


def test_crop_flip_is_the_identity_without_padding_or_flip_and_is_seeded():
    x = torch.rand(8, 3, 32, 32)
    assert torch.equal(CropFlip(0, flip=False)(x), x)
    torch.manual_seed(3)
    a = CropFlip()(x)
    torch.manual_seed(3)
    assert torch.equal(CropFlip()(x), a)
    x0 = x.clone()
    CropFlip()(x)
    assert torch.equal(x, x0), "the input is not modified"


@pytest.mark.parametrize("kwargs, name", [({"pad": -1}, "pad"), ({"flip": "yes"}, "flip")])
def test_crop_flip_rejects_bad_settings(kwargs, name):
    with pytest.raises(ArgumentError, match=name):
        CropFlip(**kwargs)


def test_crop_flip_wants_a_batch_of_images():
    with pytest.raises(ArgumentError, match="x"):
        CropFlip()(torch.rand(3, 32, 32))


# ---------------------------------------------------------------- the training loop with augmentation
def test_fit_augments_the_raw_images_before_the_front_end_and_training_cost_times_it():
    from torch import nn

    from sparsenb.models import ResNetConfig

    calls = []

    class Spy(CropFlip):
        def __call__(self, x):
            calls.append(len(x))
            return super().__call__(x)

    class Recorder(nn.Module):  # a front end that remembers what it was given
        def __init__(self):
            super().__init__()
            self.seen = []

        def settings(self):
            return {"recorder": True}

        def forward(self, x):
            self.seen.append(x.detach().clone())
            return x

    torch.manual_seed(0)
    x, y = torch.rand(16, 3, 32, 32), torch.randint(0, 10, (16,))
    config = cifar.recipe(1, 0, batch_size=8)
    fe = Recorder()
    model = fit(ResNetConfig(blocks=1), x, y, config, frontend=fe, augment=Spy(pad=4, flip=False))
    assert calls == [8, 8] and not model.training
    padded = F.pad(x, (4, 4, 4, 4))
    crops = [padded[:, :, a : a + 32, b : b + 32] for a in range(9) for b in range(9)]
    batches = [b for b in fe.seen if len(b) == 8]
    assert len(batches) == 2
    for batch in batches:  # the front end saw crops of the raw images: augmentation came first
        assert all(any(torch.equal(img, c[i]) for c in crops for i in range(16)) for img in batch)
    assert any(not any(torch.equal(img, x[i]) for i in range(16)) for b in batches for img in b)
    calls.clear()
    batches_, repeats = 1, 2
    training_cost(
        ResNetConfig(blocks=1),
        x,
        y,
        config,
        {"plain": (None, None), "front end": (cifar.frontend((0.5, 0.25, 0.25)), None)},
        batches=batches_,
        repeats=repeats,
        augment=Spy(),
    )
    # per variant: one warm-up step, then per round one timed run of `batches_` steps (the run without steps augments nothing)
    assert len(calls) == 2 * (1 + repeats * batches_)


# ---------------------------------------------------------------- the scorecard's view of another setting
def test_numbers_only_another_setting_can_measure_count_as_cannot_be_run_here(
    tmp_path, monkeypatch
):
    records = tmp_path / "book" / ".records"
    monkeypatch.setenv(scorecard.RECORDS_ENV, str(records))
    monkeypatch.setenv(scorecard.CHAPTER_ENV, "cifar10")
    monkeypatch.setenv(scorecard.KEY_ENV, "k")
    (tmp_path / "book" / ".executed").mkdir(parents=True)
    (tmp_path / "book" / ".executed" / "cifar10.json").write_text('{"key": "k"}')
    c = Comparison()
    match = {"artifact": "Table IV", "defense": "adversarial training", "attack": "PGD 1000 steps"}
    c.table(
        "Table IV",
        [
            (
                "adversarial training",
                "PGD",
                np.r_[np.ones(30, int), np.zeros(70, int)],
                match,
                OTHER_SETTING,
            )
        ],
    )
    scorecard.record(
        c,
        "laptop",
        "cifar-disagree",
        {"Table IV": "short training"},
        {"Table IV": "only a subset is here"},
    )
    card = scorecard.card("laptop", chapters=["cifar10"])
    row = card[
        (card["artifact"] == "Table IV")
        & (card["defense"] == "adversarial training")
        & (card["attack"] == "PGD 1000 steps")
    ].iloc[0]
    assert row["verdict"] == "cannot be run here" and (row["ours"] is None or np.isnan(row["ours"]))
    assert (
        row["why"].startswith("only a subset is here")
        and "Ours in that setting: 30.00" in row["why"]
    )
    other = card[
        (card["artifact"] == "Table IV") & (card["defense"] == "none") & (card["attack"] == "none")
    ].iloc[0]
    assert other["verdict"] == "not run at this profile"  # the chapter did not record that one
    with pytest.raises(ArgumentError, match="cannot"):
        scorecard.record(c, "laptop", "cifar-disagree", None, {"Table IV": ""})
