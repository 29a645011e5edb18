"""book/adversarial_training.md takes its "front end alone" network from the multiclass chapter
(sparsenb.chapters.mnist_multiclass.cnn_victims with the same arguments), so that the checkpoint is read back rather than
retrained and the front end of Table III is the network of Table II, as in the paper."""
from __future__ import annotations

from sparsenb.book.layout import Book, chapter_parameters
from sparsenb.cache import PROJECT_ROOT

#: The parameters that decide the multiclass chapter's checkpoints (training data, recipe, front end).
CHECKPOINT_KEYS = ("n_train", "epochs", "seed", "rho", "wavelet")
BOOK = Book(PROJECT_ROOT)


def test_front_end_alone_is_the_multiclass_chapters_network_in_every_profile():
    for name in ("smoke", "laptop", "full"):
        mine = chapter_parameters(name, "adversarial_training", BOOK)
        multiclass = chapter_parameters(name, "mnist_multiclass", BOOK)
        assert {k: mine[k] for k in CHECKPOINT_KEYS} == {k: multiclass[k] for k in CHECKPOINT_KEYS}, name


def test_the_papers_budgets_are_trained_and_attacked():
    """Table III's three budgets and the mismatch (train 0.1, test 0.2) in every profile: the chapter's prose
    quotes those cells by name."""
    for name in ("smoke", "laptop", "full"):
        mine = chapter_parameters(name, "adversarial_training", BOOK)
        assert mine["at_eps"] == [0.1, 0.2, 0.3] and mine["mismatch"] == [0.1, 0.2] and mine["combined_eps"] == 0.2, name
        assert mine["mismatch"][0] in mine["at_eps"] and mine["combined_eps"] in mine["at_eps"], name
