"""The one training loop (training.fit) and its cache (training.trained, trained_svm).

Tiny models on a few hundred MNIST images, one to three epochs: every test
runs in well under a second. Nothing here touches the real cache
(``SPARSENB_CACHE`` points into ``tmp_path``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsenb import cache, checks, data, models, training
from sparsenb.lab import store
from sparsenb.frontend import SparsifyingFrontEnd
from sparsenb.training import Adversary, TrainConfig


pytestmark = pytest.mark.usefixtures("one_thread")

CFG = TrainConfig(lr=0.1, momentum=0.5, batch_size=32, epochs=1)


@dataclass(frozen=True)
class TinyConfig:
    """A small multiclass net with dropout (so the random streams matter)."""

    classes: int = 10
    hidden: int = 8
    dropout: float = 0.2

    def build(self) -> nn.Module:
        return nn.Sequential(
            nn.Flatten(), nn.Linear(784, self.hidden), nn.ReLU(), nn.Dropout(self.dropout), nn.Linear(self.hidden, self.classes)
        )


@dataclass(frozen=True)
class Flip:
    """A deterministic augmentation (mirror left-right); ``fail_at`` makes the n-th call raise, to simulate a kill."""

    def __call__(self, x):
        Flip.calls += 1
        if Flip.calls == Flip.fail_at:
            raise KeyboardInterrupt("killed")
        return x.flip(-1)


Flip.calls, Flip.fail_at = 0, None


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    Flip.calls, Flip.fail_at = 0, None


@pytest.fixture(scope="module")
def digits(mnist_test):
    return data.subset(*mnist_test, 128, seed=0)


@pytest.fixture(scope="module")
def fe():
    return SparsifyingFrontEnd(0.035, "coif1")


def _same(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------
def test_fit_is_seeded(digits):
    x, y = digits
    a = training.fit(TinyConfig(), x, y, CFG)
    assert _same(a, training.fit(TinyConfig(), x, y, CFG))
    assert not _same(a, training.fit(TinyConfig(), x, y, TrainConfig(**{**CFG.__dict__, "seed": 1})))
    assert not a.training  # returned in eval mode


def test_fit_leaves_the_global_random_stream_alone(digits):
    x, y = digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    training.fit(TinyConfig(), x, y, CFG)
    assert torch.equal(torch.rand(3), expected)


def test_fit_accepts_float64_images(digits):
    x, y = digits
    assert _same(training.fit(TinyConfig(), x.double(), y, CFG), training.fit(TinyConfig(), x, y, CFG))


def _one_sgd_step(model_config, x, y, lr, l2=0.0):
    """What one full-batch SGD step from fit's initial weights must give, computed by hand."""
    torch.manual_seed(0)
    model = model_config.build().train()
    z = model(x)
    loss = F.binary_cross_entropy_with_logits(z, y.float()) if z.dim() == 1 else F.cross_entropy(z, y)
    loss = loss + l2 * sum(p.pow(2).sum() for p in model.parameters() if p.dim() > 1)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return model


@pytest.mark.parametrize("l2", [0.0, 0.5])
@pytest.mark.parametrize("model_config", [TinyConfig(dropout=0.0), models.TwoLayerConfig(hidden=4)], ids=["multiclass", "one-logit"])
def test_fit_minimises_the_cross_entropy_or_the_logistic_loss(digits, model_config, l2):
    x, y = digits
    if isinstance(model_config, models.TwoLayerConfig):
        y = (y >= 5).long()
    config = TrainConfig(lr=0.5, batch_size=len(x), steps=1, l2=l2)
    got = training.fit(model_config, x, y, config)
    want = _one_sgd_step(model_config, x, y, 0.5, l2)
    for (k, a), b in zip(got.state_dict().items(), want.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=k)


def test_l2_penalty_changes_the_weights(digits):
    x, y = digits
    plain = training.fit(TinyConfig(), x, y, CFG)
    assert not _same(plain, training.fit(TinyConfig(), x, y, TrainConfig(**{**CFG.__dict__, "l2": 1e-2})))


def test_steps_and_epochs(digits):
    """``steps`` counts batches and runs across epochs; ``epochs=2`` is the same as ``steps = 2 * batches per epoch``."""
    x, y = digits
    per_epoch = len(x) // CFG.batch_size
    by_epochs = training.fit(TinyConfig(), x, y, TrainConfig(**{**CFG.__dict__, "epochs": 2}))
    by_steps = training.fit(TinyConfig(), x, y, TrainConfig(**{**CFG.__dict__, "epochs": 1, "steps": 2 * per_epoch}))
    assert _same(by_epochs, by_steps)
    untrained = training.fit(TinyConfig(), x, y, TrainConfig(**{**CFG.__dict__, "epochs": 0}))
    torch.manual_seed(CFG.seed)
    assert _same(untrained, TinyConfig().build())


def test_front_end_sits_inside_the_graph(digits, fe):
    """Training the defended model sees fe(x): the same weights, exactly, as training on fe(x) computed beforehand."""
    x, y = digits
    inside = training.fit(TinyConfig(), x, y, CFG, frontend=fe)
    before = training.fit(TinyConfig(), training.sparsify_dataset(x, fe), y, CFG)
    assert _same(inside, before)
    assert not _same(inside, training.fit(TinyConfig(), x, y, CFG))
    assert isinstance(inside, nn.Sequential) and not any(isinstance(m, SparsifyingFrontEnd) for m in inside.modules())


def test_front_end_per_step_and_once_per_image_agree(digits, fe):
    """With an augmentation the front end runs on every batch inside the graph; without one its output is
    computed once per image. An augmentation that changes nothing must give the same weights either way."""
    x, y = digits
    per_step = training.fit(TinyConfig(), x, y, CFG, frontend=fe, augment=torch.clone)
    once = training.fit(TinyConfig(), x, y, CFG, frontend=fe)
    assert _same(per_step, once)


class _Recorder(nn.Module):
    """Stands in for a front end: logs what it sees and passes it on."""

    def __init__(self, log):
        super().__init__()
        self.log = log

    def forward(self, x):
        self.log.append(("frontend", x.clone()))
        return x


def test_augment_comes_before_the_adversary_and_the_front_end(digits):
    x, y = digits
    log = []

    def augment(xb):
        out = xb.flip(-1)
        log.append(("augment", out.clone()))
        return out

    def adversary(graph, xb, yb):
        log.append(("adversary", xb.clone()))
        return xb

    training.fit(TinyConfig(), x, y, TrainConfig(batch_size=64, steps=2), frontend=_Recorder(log), augment=augment, adversary=adversary)
    log = log[[name for name, _ in log].index("augment") :]  # before it: fit's look at the number of classes
    names = [name for name, _ in log]
    # the adversary's forward passes go through the front end too; training's own comes last
    assert names[0] == "augment" and names[1] == "adversary" and names[-1] == "frontend"
    first_train = names.index("augment", 1) - 1
    assert names[first_train] == "frontend"
    assert torch.equal(log[1][1], log[0][1])  # the adversary sees the augmented batch
    assert torch.equal(log[first_train][1], log[0][1])  # and so does the front end


def test_augmentation_output_is_what_the_model_learns_from(digits, fe):
    x, y = digits
    augmented = training.fit(TinyConfig(), x, y, CFG, frontend=fe, augment=Flip())
    assert _same(augmented, training.fit(TinyConfig(), training.sparsify_dataset(x.flip(-1), fe), y, CFG))


def test_adversary_sees_the_defended_model_in_eval_mode_and_its_images_are_used(digits, fe):
    x, y = digits
    seen = []

    def adversary(graph, xb, yb):
        seen.append((graph, [m.training for m in graph.modules()]))
        return 1.0 - xb

    model = training.fit(TinyConfig(), x, y, CFG, frontend=fe, adversary=adversary)
    assert len(seen) == len(x) // CFG.batch_size
    graph, modes = seen[0]
    assert isinstance(graph, nn.Sequential) and graph[0] is fe
    assert not any(modes)
    assert _same(model, training.fit(TinyConfig(), training.sparsify_dataset(1.0 - x, fe), y, CFG))


def test_madry_adversary_is_seeded_and_changes_training(digits):
    x, y = digits
    x, y = x[:64], y[:64]
    config = TrainConfig(lr=0.1, batch_size=32, epochs=1)
    adv = Adversary("pgd", 0.1, {"step": 0.05, "steps": 2})
    a = training.fit(TinyConfig(), x, y, config, adversary=adv)
    assert _same(a, training.fit(TinyConfig(), x, y, config, adversary=adv))
    assert not _same(a, training.fit(TinyConfig(), x, y, config))


def test_adversary_stays_in_the_ball(digits):
    x, y = digits
    net = TinyConfig().build().eval()
    torch.manual_seed(0)
    x_adv = Adversary("pgd", 0.1, {"step": 0.05, "steps": 2})(net, x[:16], y[:16])
    assert float((x_adv - x[:16]).abs().max()) <= 0.1 + 1e-6
    assert not torch.equal(x_adv, x[:16])


@pytest.mark.parametrize(
    "args, name",
    [(("nope", 0.1), "attack"), (("pgd", 1.5), "eps"), (("pgd", 0.1, {1: 2}), "kwargs"), (("pgd", 0.1, None, -1), "ramp")],
)
def test_adversary_rejects_bad_arguments(args, name):
    with pytest.raises(checks.ArgumentError) as err:
        Adversary(*args)
    assert err.value.argument == name and str(err.value).startswith(name)


# --------------------------------------------------------------------------
# fast adversarial training: the cyclic schedule, the epsilon ramp, the guard
# --------------------------------------------------------------------------
def test_the_cyclic_schedule_rises_to_lr_at_two_fifths_of_training_and_falls_to_zero():
    config = TrainConfig(lr=0.5, schedule="cyclic")
    rates = [training._learning_rate(config, step, 2, 10) for step in range(10)]
    assert rates == pytest.approx([0.125, 0.25, 0.375, 0.5, 0.5 * 5 / 6, 0.5 * 4 / 6, 0.25, 0.5 * 2 / 6, 0.5 / 6, 0.0])
    assert max(rates) == 0.5 and rates.index(0.5) == 3  # the end of step 4 of 10
    step = TrainConfig(lr=0.5, milestones=(3,), lr_decay=0.1)
    assert [training._learning_rate(step, s, 2, 10) for s in (5, 6)] == pytest.approx([0.5, 0.05])


def test_a_cyclic_schedule_trains_differently_and_is_seeded(digits):
    x, y = digits
    cyclic = TrainConfig(**{**CFG.__dict__, "epochs": 2, "schedule": "cyclic"})
    a = training.fit(TinyConfig(), x, y, cyclic)
    assert _same(a, training.fit(TinyConfig(), x, y, cyclic))
    assert not _same(a, training.fit(TinyConfig(), x, y, TrainConfig(**{**CFG.__dict__, "epochs": 2})))


def test_the_ramp_raises_epsilon_and_the_step_in_proportion():
    adv = Adversary("pgd", 0.3, {"step": 0.375, "steps": 1}, ramp=2)
    half = adv.at(1.0)
    assert half.eps == pytest.approx(0.15) and dict(half.kwargs) == pytest.approx({"step": 0.1875, "steps": 1})
    assert half.ramp == 0 and adv.at(0).eps == 0
    full = adv.at(2.5)
    assert full.eps == 0.3 and dict(full.kwargs) == {"step": 0.375, "steps": 1}
    plain = Adversary("pgd", 0.3, {"step": 0.375, "steps": 1})
    assert plain.at(0.0) is plain


def test_a_ramped_adversary_trains_as_the_adversary_in_force_at_each_step(digits, monkeypatch):
    x, y = digits
    seen = []
    real = Adversary.__call__

    def spy(self, model, xb, yb):
        seen.append(self.eps)
        return real(self, model, xb, yb)

    monkeypatch.setattr(Adversary, "__call__", spy)
    config = TrainConfig(**{**CFG.__dict__, "epochs": 2})
    training.fit(TinyConfig(), x, y, config, adversary=Adversary("pgd", 0.2, {"step": 0.05, "steps": 1}, ramp=1))
    per_epoch = len(x) // config.batch_size
    assert seen == pytest.approx([0.2 * (s + 1) / per_epoch for s in range(per_epoch)] + [0.2] * per_epoch)


def _guard_reads(monkeypatch, accuracies):
    """Let the guard read ``accuracies``, one per epoch, instead of attacking."""
    reads = iter(accuracies)
    monkeypatch.setattr(training, "_guard", lambda x, y, config, adversary: (lambda graph: next(reads)) if config.guard else None)


def test_the_guard_stops_at_catastrophic_overfitting_and_keeps_the_best_epoch(digits, monkeypatch):
    x, y = digits
    adv = Adversary("pgd", 0.1, {"step": 0.125, "steps": 1})
    config = TrainConfig(**{**CFG.__dict__, "epochs": 4, "guard": 32})
    _guard_reads(monkeypatch, [0.5, 0.6, 0.45, 0.2])  # epoch 3 within 0.2 of the best; epoch 4 not
    model = training.fit(TinyConfig(), x, y, config, adversary=adv)
    log = model.fit_log
    assert [e["guard accuracy"] for e in log["epochs"]] == [0.5, 0.6, 0.45, 0.2]
    assert log["stopped"] == 4 and log["best"] == 2
    two = TrainConfig(**{**CFG.__dict__, "epochs": 2})
    assert _same(model, training.fit(TinyConfig(), x, y, two, adversary=adv))  # the best epoch's weights
    _guard_reads(monkeypatch, [0.5, 0.1, 0.6, 0.7])  # a fall stops at once, whatever follows
    stopped = training.fit(TinyConfig(), x, y, config, adversary=adv).fit_log
    assert stopped["stopped"] == 2 and len(stopped["epochs"]) == 2


def test_the_guard_attacks_fixed_training_images_at_the_full_epsilon(digits):
    x, y = digits
    adv = Adversary("pgd", 0.1, {"step": 0.125, "steps": 1}, ramp=1)
    config = TrainConfig(**{**CFG.__dict__, "epochs": 2, "guard": 20})
    log = training.fit(TinyConfig(), x, y, config, adversary=adv).fit_log
    assert len(log["epochs"]) == 2 and log["stopped"] is None
    assert all(0 <= e["guard accuracy"] <= 1 and e["seconds"] > 0 for e in log["epochs"])
    accuracy = [e["guard accuracy"] for e in log["epochs"]]
    assert log["best"] == max(i + 1 for i, a in enumerate(accuracy) if a == max(accuracy))  # ties: the later
    guard = training._guard(x, y, config, adv)
    net = TinyConfig().build().eval()
    assert guard(net) == guard(net)  # the same images and the same start every epoch
    assert training.fit(TinyConfig(), x, y, CFG).fit_log["epochs"][0].keys() == {"epoch", "seconds"}
    with pytest.raises(checks.ArgumentError, match="^config"):
        training.fit(TinyConfig(), x, y, config)  # a guard without an adversary


def test_a_killed_guarded_run_resumes_with_its_log_and_best_epoch(digits, tmp_path, monkeypatch):
    x, y = digits
    adv = Adversary("pgd", 0.1, {"step": 0.125, "steps": 1})
    config = TrainConfig(**{**CFG.__dict__, "epochs": 4, "guard": 32})
    per_epoch = len(x) // config.batch_size
    path = tmp_path / "run.train.pt"
    _guard_reads(monkeypatch, [0.5, 0.6, 0.45])
    Flip.calls, Flip.fail_at = 0, 2 * per_epoch + 2  # killed in epoch 3
    with pytest.raises(KeyboardInterrupt):
        training.fit(TinyConfig(), x, y, config, augment=Flip(), adversary=adv, checkpoint=path)
    Flip.calls, Flip.fail_at = 0, None
    _guard_reads(monkeypatch, [0.45, 0.2])  # epochs 3 and 4 of the resumed run
    resumed = training.fit(TinyConfig(), x, y, config, augment=Flip(), adversary=adv, checkpoint=path)
    assert [e["guard accuracy"] for e in resumed.fit_log["epochs"]] == [0.5, 0.6, 0.45, 0.2]
    assert resumed.fit_log["stopped"] == 4 and resumed.fit_log["best"] == 2
    two = TrainConfig(**{**CFG.__dict__, "epochs": 2})
    assert _same(resumed, training.fit(TinyConfig(), x, y, two, augment=Flip(), adversary=adv))


def _kill_mid_run(model_config, x, y, config, path, fail_at):
    Flip.calls, Flip.fail_at = 0, fail_at
    with pytest.raises(KeyboardInterrupt):
        training.fit(model_config, x, y, config, augment=Flip(), checkpoint=path)
    Flip.calls, Flip.fail_at = 0, None


@pytest.mark.parametrize(
    "changes",
    [
        {"epochs": 3},
        {"epochs": 3, "optimizer": "adam", "lr": 1e-3, "momentum": 0.0, "milestones": (2,)},
        {"epochs": 1, "steps": 2 * 4 + 2},  # a step budget that ends inside the third epoch
    ],
    ids=["sgd", "adam with a milestone", "steps"],
)
def test_a_killed_run_resumes_to_the_same_weights(digits, tmp_path, changes):
    x, y = digits
    config = TrainConfig(**{**CFG.__dict__, **changes})
    per_epoch = len(x) // config.batch_size
    total = config.steps or config.epochs * per_epoch
    path = tmp_path / "run.train.pt"
    _kill_mid_run(TinyConfig(), x, y, config, path, fail_at=per_epoch + 3)  # killed in epoch 2
    state = torch.load(path, weights_only=True)
    assert state["step"] == per_epoch  # the last finished epoch
    resumed = training.fit(TinyConfig(), x, y, config, augment=Flip(), checkpoint=path)
    assert Flip.calls == total - per_epoch  # only what was left
    assert _same(resumed, training.fit(TinyConfig(), x, y, config, augment=Flip()))


def test_progress_amp_on_cpu_and_device_change_nothing(digits):
    x, y = digits
    plain = training.fit(TinyConfig(), x, y, CFG)
    assert _same(plain, training.fit(TinyConfig(), x, y, CFG, progress=True))
    assert _same(plain, training.fit(TinyConfig(), x, y, CFG, device="cpu"))
    assert _same(plain, training.fit(TinyConfig(), x, y, TrainConfig(**{**CFG.__dict__, "amp": True})))  # bf16 on CUDA only


def test_milestones_decay_the_learning_rate(digits):
    x, y = digits
    two = TrainConfig(**{**CFG.__dict__, "epochs": 2})
    decayed = training.fit(TinyConfig(), x, y, TrainConfig(**{**two.__dict__, "milestones": (1,), "lr_decay": 0.5}))
    assert not _same(decayed, training.fit(TinyConfig(), x, y, two))
    late = TrainConfig(**{**two.__dict__, "milestones": (2,), "lr_decay": 0.5})  # from epoch 2 on: never reached
    assert _same(training.fit(TinyConfig(), x, y, late), training.fit(TinyConfig(), x, y, two))


def test_a_longer_run_continues_a_shorter_one(digits, tmp_path):
    x, y = digits
    path = tmp_path / "run.train.pt"
    two = TrainConfig(**{**CFG.__dict__, "epochs": 2})
    three = TrainConfig(**{**CFG.__dict__, "epochs": 3})
    training.fit(TinyConfig(), x, y, two, checkpoint=path)
    assert path.is_file()
    assert _same(training.fit(TinyConfig(), x, y, three, checkpoint=path), training.fit(TinyConfig(), x, y, three))


@pytest.mark.parametrize(
    "field, value",
    [
        ("optimizer", "rmsprop"),
        ("lr", 0.0),
        ("lr", float("nan")),
        ("momentum", 1.0),
        ("nesterov", 1),
        ("weight_decay", -1.0),
        ("l2", "0.1"),
        ("batch_size", 0),
        ("batch_size", 32.0),
        ("epochs", -1),
        ("steps", 1.5),
        ("milestones", [1]),
        ("lr_decay", 0.0),
        ("seed", -1),
        ("seed", None),
        ("amp", "yes"),
        ("schedule", "cosine"),
        ("guard", -1),
        ("guard_drop", 0.0),
        ("guard_drop", 1.5),
    ],
)
def test_train_config_rejects_bad_fields(field, value):
    with pytest.raises(checks.ArgumentError) as err:
        TrainConfig(**{field: value})
    assert err.value.argument == field


def test_train_config_names_the_bad_milestone():
    with pytest.raises(checks.ArgumentError) as err:
        TrainConfig(milestones=(2, 0))
    assert err.value.argument == "milestones[1]"


def _bad_fit_arguments(digits):
    x, y = digits
    x, y = x[:8], y[:8]
    return [
        ("model_config", dict(model_config=nn.Linear(784, 10))),
        ("model_config", dict(model_config=TinyConfig)),  # the class, not an instance
        ("config", dict(config={"lr": 0.1})),
        ("x", dict(x=(x * 255).to(torch.uint8))),
        ("x", dict(x=x.numpy())),
        ("x", dict(x=x * 2)),
        ("x", dict(x=x[:, 0])),
        ("x", dict(x=x[:0], y=y[:0])),
        ("y", dict(y=y.float())),
        ("y", dict(y=y[:5])),
        ("y", dict(y=torch.full_like(y, -100))),  # cross_entropy's ignore_index would skip the loss
        ("y", dict(y=torch.full_like(y, 10))),
        ("y", dict(model_config=models.TwoLayerConfig(hidden=2), y=torch.full_like(y, 5))),  # one logit: 0/1
        ("frontend", dict(frontend=lambda t: t)),
        ("augment", dict(augment=3)),
        ("adversary", dict(adversary="pgd")),
        ("checkpoint", dict(checkpoint=3)),
    ]


def test_fit_names_each_bad_argument(digits):
    x, y = digits
    for name, bad in _bad_fit_arguments(digits):
        kwargs = dict(model_config=TinyConfig(), x=x[:8], y=y[:8], config=TrainConfig(batch_size=4))
        kwargs.update(bad)
        with pytest.raises(checks.ArgumentError) as err:
            training.fit(**kwargs)
        assert err.value.argument == name, (name, bad, err.value)


def test_fit_rejects_bad_arguments_before_writing_a_checkpoint(digits, tmp_path):
    x, y = digits
    with pytest.raises(checks.ArgumentError, match="^y"):
        training.fit(TinyConfig(), x[:8], torch.full((8,), 10), TrainConfig(batch_size=4), checkpoint=tmp_path / "c.pt")
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------
# trained: the cache of checkpoints
# --------------------------------------------------------------------------
@pytest.fixture
def fit_calls(monkeypatch):
    calls = []
    real = training.fit

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "fit", counting)
    return calls


def _small(digits):
    x, y = digits
    return x[:64], y[:64]


def _checkpoints(tmp_path):
    return sorted((tmp_path / "cache" / "checkpoints").glob("*.pt"))


def test_trained_trains_once_then_loads(digits, fit_calls, tmp_path):
    x, y = _small(digits)
    a = store.trained(TinyConfig(), x, y, CFG)
    b = store.trained(TinyConfig(), x, y, CFG)
    assert len(fit_calls) == 1
    assert _same(a, b) and not b.training
    assert _same(a, training.fit(TinyConfig(), x, y, CFG))
    (path,) = _checkpoints(tmp_path)
    assert path.name.startswith("tiny-")
    state = torch.load(path, weights_only=True)
    assert set(state) == {"state_dict", "model_config", "key", "log"}
    assert state["model_config"] == {"type": "TinyConfig", "classes": 10, "hidden": 8, "dropout": 0.2}
    assert all(torch.equal(v, a.state_dict()[k]) for k, v in state["state_dict"].items())
    assert json.loads(path.with_suffix(".json").read_text()) == json.loads(state["key"])
    with pytest.raises(checks.ArgumentError, match="^model_config"):
        store.load_checkpoint(path, TinyConfig(hidden=9))


def test_trained_with_a_front_end_loads_the_classifier(digits, fe, fit_calls):
    x, y = _small(digits)
    a = store.trained(TinyConfig(), x, y, CFG, frontend=fe)
    b = store.trained(TinyConfig(), x, y, CFG, frontend=fe)
    assert len(fit_calls) == 1 and _same(a, b)
    assert _same(b, training.fit(TinyConfig(), training.sparsify_dataset(x, fe), y, CFG))


def test_every_ingredient_of_a_run_is_in_its_key(digits, fe, fit_calls, tmp_path):
    x, y = _small(digits)
    y2 = y.clone()
    y2[0] = (y2[0] + 1) % 10
    x2 = x.clone()
    x2[0, 0, 0, 0] = 0.5
    runs = [
        dict(),
        dict(model_config=TinyConfig(hidden=9)),
        dict(config=TrainConfig(**{**CFG.__dict__, "lr": 0.05})),
        dict(x=x2),
        dict(y=y2),
        dict(frontend=fe),
        dict(frontend=SparsifyingFrontEnd(0.05, "coif1")),
        dict(frontend=SparsifyingFrontEnd(0.035, "db5")),
        dict(augment=Flip()),
        dict(adversary=Adversary("fgsm", 0.1)),
        dict(adversary=Adversary("fgsm", 0.2)),
    ]
    for run in runs:
        kwargs = dict(model_config=TinyConfig(), x=x, y=y, config=CFG)
        kwargs.update(run)
        store.trained(**kwargs)
    assert len(fit_calls) == len(runs)
    assert len(_checkpoints(tmp_path)) == len(runs)
    for run in runs:  # all of them load now
        kwargs = dict(model_config=TinyConfig(), x=x, y=y, config=CFG)
        kwargs.update(run)
        store.trained(**kwargs)
    assert len(fit_calls) == len(runs)


def test_trained_keys_on_the_front_ends_gradient_only_with_an_adversary(digits, fit_calls):
    x, y = _small(digits)
    store.trained(TinyConfig(), x, y, CFG, frontend=SparsifyingFrontEnd(0.035, gradient="bpda"))
    store.trained(TinyConfig(), x, y, CFG, frontend=SparsifyingFrontEnd(0.035, gradient="projection"))
    assert len(fit_calls) == 1  # without an adversary the backward pass is never used
    adv = Adversary("fgsm", 0.1)
    store.trained(TinyConfig(), x, y, CFG, frontend=SparsifyingFrontEnd(0.035, gradient="bpda"), adversary=adv)
    store.trained(TinyConfig(), x, y, CFG, frontend=SparsifyingFrontEnd(0.035, gradient="projection"), adversary=adv)
    assert len(fit_calls) == 3


def test_trained_retrains_when_the_code_fingerprint_changes(digits, fit_calls, monkeypatch):
    x, y = _small(digits)
    store.trained(TinyConfig(), x, y, CFG)
    store.trained(TinyConfig(), x, y, CFG)
    assert len(fit_calls) == 1
    monkeypatch.setattr(store, "code_fingerprint", lambda *modules: "new code")
    store.trained(TinyConfig(), x, y, CFG)
    assert len(fit_calls) == 2


def test_trained_keeps_the_training_log_with_the_weights(digits, fit_calls):
    x, y = _small(digits)
    first = store.trained(TinyConfig(), x, y, CFG)
    again = store.trained(TinyConfig(), x, y, CFG)
    assert len(fit_calls) == 1 and again.fit_log == first.fit_log and len(first.fit_log["epochs"]) == 1


def test_trained_folder_argument(digits, fit_calls, tmp_path):
    x, y = _small(digits)
    store.trained(TinyConfig(), x, y, CFG, folder=tmp_path / "elsewhere", name="mine")
    assert [p.name[:5] for p in (tmp_path / "elsewhere").glob("*.pt")] == ["mine-"]
    assert not (tmp_path / "cache").exists()


def test_a_killed_trained_run_resumes_from_its_partial_state(digits, fit_calls, tmp_path):
    x, y = digits
    config = TrainConfig(**{**CFG.__dict__, "epochs": 2})
    per_epoch = len(x) // config.batch_size
    Flip.calls, Flip.fail_at = 0, per_epoch + 2
    with pytest.raises(KeyboardInterrupt):
        store.trained(TinyConfig(), x, y, config, augment=Flip())
    (partial,) = (tmp_path / "cache" / "checkpoints").glob("*.train.pt")
    assert [p.name for p in _checkpoints(tmp_path)] == [partial.name]  # no finished checkpoint yet
    Flip.calls, Flip.fail_at = 0, None
    resumed = store.trained(TinyConfig(), x, y, config, augment=Flip())
    assert Flip.calls == per_epoch
    assert not partial.exists()
    assert _same(resumed, training.fit(TinyConfig(), x, y, config, augment=Flip()))


def test_trained_checks_its_arguments_first(digits, tmp_path):
    x, y = _small(digits)
    with pytest.raises(checks.ArgumentError, match="^augment"):
        store.trained(TinyConfig(), x, y, CFG, augment=lambda t: t)  # not a dataclass: cannot be keyed
    with pytest.raises(checks.ArgumentError, match="^x"):
        store.trained(TinyConfig(), x * 2, y, CFG)
    with pytest.raises(checks.ArgumentError, match="^frontend"):  # no settings() to key it by
        store.trained(TinyConfig(), x, y, CFG, frontend=nn.Identity())
    assert not (tmp_path / "cache").exists()


# --------------------------------------------------------------------------
# the linear SVM
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pair(mnist_test):
    x, y = data.digit_pair(*mnist_test, negative=3, positive=7)
    return data.subset(x, y, 120, seed=0)


@pytest.fixture
def svm_calls(monkeypatch):
    calls = []
    real = training._liblinear

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "_liblinear", counting)  # one call per fit (in this process: workers=1)
    return calls


SVM = training.SVMConfig(max_iter=300)  # converged or not, the same fit every time


def test_trained_svm_fits_once_per_key(pair, fe, svm_calls, monkeypatch, tmp_path):
    x, y = pair
    a = store.trained_svm(x, y, SVM)
    b = store.trained_svm(x, y, SVM)
    assert len(svm_calls) == 1
    assert torch.equal(a.w, b.w) and float(a.b.detach()) == float(b.b.detach())
    path = next((tmp_path / "cache" / "checkpoints").glob("svm-*.pt"))
    assert set(torch.load(path, weights_only=True)) == {"w", "b", "key"}
    store.trained_svm(x, y, training.SVMConfig(C=0.5, max_iter=300))
    store.trained_svm(x, y, SVM, frontend=fe)
    store.trained_svm(x.double(), y, SVM)
    assert len(svm_calls) == 4
    monkeypatch.setattr(store, "code_fingerprint", lambda *modules: "new code")
    store.trained_svm(x, y, SVM)
    assert len(svm_calls) == 5


def test_trained_svm_fits_the_sparsified_images(pair, fe):
    x, y = pair
    a = store.trained_svm(x, y, SVM, frontend=fe)
    b = training.train_linear_svm(training.sparsify_dataset(x, fe), y, SVM)
    assert torch.equal(a.w, b.w) and float(a.b.detach()) == float(b.b.detach())


def test_trained_svms_side_by_side_fit_what_one_at_a_time_fits(pair, fe, tmp_path):
    x, y = pair
    fes = {"plain": None, "coif1": fe, "haar": SparsifyingFrontEnd(0.05, "haar")}
    store.trained_svm(x, y, SVM, frontend=fe)  # one stored already: the others are fitted in 2 processes
    side = store.trained_svms(x, y, SVM, fes, workers=2)
    assert list(side) == list(fes)
    alone = {n: training.train_linear_svm(training.sparsify_dataset(x, f), y, SVM) for n, f in fes.items()}
    for n in fes:
        assert torch.equal(side[n].w, alone[n].w) and float(side[n].b.detach()) == float(alone[n].b.detach()), n
    assert len(list((tmp_path / "cache" / "checkpoints").glob("svm-*.pt"))) == 3
    again = store.trained_svms(x, y, SVM, fes)  # read back
    assert all(torch.equal(again[n].w, side[n].w) for n in fes)
    with pytest.raises(checks.ArgumentError, match="^workers "):
        store.trained_svms(x, y, SVM, fes, workers=0)
    with pytest.raises(checks.ArgumentError, match="^frontends "):
        store.trained_svms(x, y, SVM, [fe])


def test_svm_labels_are_binary(pair):
    x, y = pair
    with pytest.raises(checks.ArgumentError, match="^y"):
        store.trained_svm(x, y + 2)
    with pytest.raises(checks.ArgumentError, match="^C"):
        training.SVMConfig(C=0)
    for frontend in ("coif1", nn.Identity()):
        with pytest.raises(checks.ArgumentError, match="^frontend"):
            store.trained_svm(x, y, SVM, frontend=frontend)
    with pytest.raises(checks.ArgumentError, match="^config"):
        store.trained_svm(x, y, "svm")


def test_guard_code_keys_the_checkpoint_only_when_on():
    from sparsenb.attacks import get
    from sparsenb.cache import modules_of

    plain = modules_of(training.TrainConfig())
    guarded = modules_of(training.TrainConfig(guard=8))
    pgd_modules = set(modules_of(get("pgd")))
    assert pgd_modules and not pgd_modules <= set(plain)
    assert pgd_modules <= set(guarded)
