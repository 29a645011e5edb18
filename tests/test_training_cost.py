"""Measuring what training costs (sparsenb.lab.timing): the timed loop is training.fit itself, the
fixed costs of a run are subtracted, wall-clock and CPU time are told apart, the measurement is stored
once per key, and cost_frame turns it into seconds per epoch and slowdowns.

Tiny models on a few hundred MNIST digits; a deliberately slow adversary (it sleeps) gives timings
that cannot be confused with noise."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from sparsenb import cache, data
from sparsenb.lab import timing as training_cost
from sparsenb.checks import ArgumentError
from sparsenb.frontend import SparsifyingFrontEnd
from sparsenb.training import Adversary, TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = TrainConfig(lr=0.1, batch_size=16)
SLEEP = 0.05


@dataclass(frozen=True)
class TinyConfig:
    classes: int = 10
    build_sleep: float = 0.0

    def build(self) -> nn.Module:
        time.sleep(self.build_sleep)  # a fixed cost of every run, not of its steps
        return nn.Sequential(nn.Flatten(), nn.Linear(784, self.classes))


@dataclass(frozen=True)
class Sleepy:
    """An 'adversary' that waits SLEEP seconds per batch and changes nothing: wall time without CPU time."""

    calls: list = None

    def __call__(self, model, x, y):
        if self.calls is not None:
            self.calls.append(len(x))
        time.sleep(SLEEP)
        return x


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def digits(mnist_test):
    x, y = mnist_test
    return x[:64].clone(), y[:64].clone()


def test_the_timed_loop_is_fit_with_each_variant(digits):
    x, y = digits
    calls = []
    cost = training_cost.training_cost(TinyConfig(), x, y, CFG, {"plain": (None, None), "slow": (None, Sleepy(calls))},
                                       batches=2, repeats=3)
    assert cost["batch_size"] == 16 and cost["batches"] == 2 and cost["repeats"] == 3 and cost["device"] == "cpu"
    assert cost["threads"] == torch.get_num_threads()
    assert set(cost["runs"]) == {"plain", "slow"}
    for name in ("plain", "slow"):
        assert {k: len(v) for k, v in cost["runs"][name].items()} == {"wall": 3, "cpu": 3, "setup_wall": 3, "setup_cpu": 3}
    # one warm-up batch, then 2 batches per round; the empty run reaches no batch
    assert calls == [16] * (1 + 2 * 3)


def test_a_slow_adversary_costs_wall_time_per_batch_not_cpu_time(digits):
    x, y = digits
    cost = training_cost.training_cost(TinyConfig(), x, y, CFG, {"plain": (None, None), "slow": (None, Sleepy())},
                                       batches=4, repeats=3)
    # a margin of half the sleep: a burst of load on a shared machine must not fail the test
    wall = training_cost.per_step_seconds(cost, "slow", "wall") - training_cost.per_step_seconds(cost, "plain", "wall")
    assert wall >= 0.5 * SLEEP
    assert training_cost.per_step_seconds(cost, "slow", "cpu") < training_cost.per_step_seconds(cost, "slow", "wall") - 0.5 * SLEEP


def test_fixed_costs_of_a_run_are_subtracted(digits):
    x, y = digits
    cost = training_cost.training_cost(TinyConfig(build_sleep=0.2), x, y, CFG, {"plain": (None, None)}, batches=1, repeats=2)
    assert training_cost.per_step_seconds(cost, "plain", "wall") < 0.1  # building the model (0.2 s) is not a step
    assert training_cost.per_step_seconds(cost, "plain", "setup_wall") >= 0.2  # it is the run's setup


def test_front_end_and_pgd_variants_run(digits):
    x, y = digits
    fe = SparsifyingFrontEnd(0.035, "coif1")
    runs = {"plain": (None, None), "front end": (fe, None), "PGD-3": (None, Adversary("pgd", 0.1, {"step": 0.05, "steps": 3})),
            "front end + PGD-3": (fe, Adversary("pgd", 0.1, {"step": 0.05, "steps": 3}))}
    cost = training_cost.training_cost(TinyConfig(), x, y, CFG, runs, batches=1, repeats=1)
    assert list(cost["runs"]) == list(runs)
    assert all(v >= 0 for r in cost["runs"].values() for v in r["wall"] + r["cpu"])


def test_measured_cost_is_stored_once_per_key(digits, monkeypatch, tmp_path):
    x, y = digits
    calls = []
    real = training_cost.training_cost

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(training_cost, "training_cost", counting)
    runs = {"plain": (None, None)}
    first = training_cost.measured_cost(TinyConfig(), x, y, CFG, runs, batches=1, repeats=1)
    again = training_cost.measured_cost(TinyConfig(), x, y, CFG, runs, batches=1, repeats=1)
    assert first == again and len(calls) == 1
    stored_keys = [json.loads(f.read_text())["key"] for f in (tmp_path / "cache" / "results").rglob("*.json")]
    assert len(stored_keys) == 1 and stored_keys[0]["code"]  # the code's fingerprint is part of the key
    training_cost.measured_cost(TinyConfig(), x, y, CFG, runs, batches=1, repeats=2)
    training_cost.measured_cost(TinyConfig(), x, y, CFG, {"plain": (None, Adversary("fgsm", 0.1))}, batches=1, repeats=1)
    assert len(calls) == 3


def test_cost_frame_gives_epochs_and_slowdowns():
    cost = {"batch_size": 50, "batches": 1, "repeats": 3, "device": "cpu", "threads": 1,
            "runs": {"plain": {"wall": [0.1, 0.3, 0.2], "cpu": [0.2, 0.2, 0.4]},
                     "AT": {"wall": [1.0, 1.0, 1.0], "cpu": [2.0, 2.2, 1.8]}}}
    frame = training_cost.cost_frame(cost, epoch_images=1000)
    assert frame.loc["plain", "s per batch (wall)"] == pytest.approx(0.2)
    assert frame.loc["plain", "s per epoch (wall)"] == pytest.approx(0.2 * 20)
    assert frame.loc["AT", "CPU s per epoch"] == pytest.approx(2.0 * 20)
    assert frame.loc["AT", "slowdown (CPU)"] == pytest.approx(10.0)
    assert frame.loc["AT", "slowdown (wall)"] == pytest.approx(5.0)
    assert frame.loc["plain", "spread"] == pytest.approx(1.0)
    assert training_cost.cost_frame(cost, 1000, reference="AT").loc["plain", "slowdown (CPU)"] == pytest.approx(0.1)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"runs": {}}, "runs"),
        ({"runs": {"a": None}}, "runs"),
        ({"runs": {"a": ("fe", None)}}, "runs['a'][0]"),
        ({"runs": {"a": (None, 3)}}, "runs['a'][1]"),
        ({"batches": 0}, "batches"),
        ({"repeats": 0}, "repeats"),
        ({"batches": 5}, "x"),  # 5 batches of 16 need 80 images
        ({"config": "sgd"}, "config"),
    ],
)
def test_bad_arguments_are_named(digits, kwargs, name):
    x, y = digits
    args = {"runs": {"plain": (None, None)}, "batches": 1, "repeats": 1, "config": CFG} | kwargs
    with pytest.raises(ArgumentError) as err:
        training_cost.training_cost(TinyConfig(), x, y, args.pop("config"), **args)
    assert err.value.argument == name


def test_per_step_seconds_names_unknown_variants_and_clocks():
    cost = {"runs": {"plain": {"wall": [1.0], "cpu": [1.0]}}}
    with pytest.raises(ArgumentError):
        training_cost.per_step_seconds(cost, "AT")
    with pytest.raises(ArgumentError):
        training_cost.per_step_seconds(cost, "plain", "gpu")


def test_cost_frame_keeps_the_measured_order_when_the_cost_is_read_back(digits):
    """A stored cost comes back with its variants' keys sorted; the frame's rows and default reference stay as measured."""
    x, y = digits
    runs = {"plain": (None, None), "adversarial": (None, Adversary("fgsm", 0.1))}  # "adversarial" sorts first
    first = training_cost.measured_cost(TinyConfig(), x, y, CFG, runs, batches=1, repeats=1)
    again = training_cost.measured_cost(TinyConfig(), x, y, CFG, runs, batches=1, repeats=1)
    assert list(again["runs"]) == ["adversarial", "plain"]  # as stored (sorted keys) ...
    for cost in (first, again):
        frame = training_cost.cost_frame(cost, 1000)
        assert list(frame.index) == ["plain", "adversarial"]  # ... but the frame follows the measured order
        assert frame.loc["plain", "slowdown (CPU)"] == pytest.approx(1.0)
