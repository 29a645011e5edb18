r"""Training: one loop for every network of the book, and the linear SVM.

:func:`fit` is the loop (read it in one screen): seeded, with a progress bar,
a resumable checkpoint per epoch, on any device, bf16 autocast on request
on CUDA. Per batch it does, in this order::

    x = augment(x)                  # optional, on the raw images (e.g. crop + flip)
    x = adversary(graph, x, y)      # optional: Madry's inner maximisation, through the front end
    loss = L(model(frontend(x)), y) # the front end, if any, sits inside the graph

with the cross-entropy for multiclass logits and the logistic loss for one
logit. :func:`sparsenb.lab.store.trained` wraps it in the checkpoint store
(keyed by the configs, the data and the code that trains).

The linear SVM stays scikit-learn's (:func:`train_linear_svm`, stored by
:func:`sparsenb.lab.store.trained_svm`); it is fitted on images sparsified
beforehand, which is the same thing for a model with no gradient-based
training.
"""
from __future__ import annotations

import dataclasses
import io
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import checks, distributed
from .cache import atomic_write_bytes, modules_of
from .frontend import defended
from .models.linear import LinearClassifier

__all__ = [
    "TrainConfig",
    "SVMConfig",
    "Adversary",
    "CropFlip",
    "CNN_TRAINING",
    "TWO_LAYER_TRAINING",
    "SCHEDULES",
    "CYCLE_PEAK",
    "fit",
    "check_fit",
    "train_linear_svm",
    "train_linear_svms",
    "sparsify_dataset",
]


#: Learning-rate schedules of :class:`TrainConfig`: step decay at milestones, or one linear cycle.
SCHEDULES = ("step", "cyclic")
#: Where the cyclic schedule peaks, as a fraction of training (Wong et al. 2020).
CYCLE_PEAK = 0.4


@dataclass(frozen=True)
class TrainConfig:
    r"""How to train (the model itself is described by its own config, e.g. :class:`~sparsenb.models.cnn.CNNConfig`).

    ``steps > 0`` trains that many steps instead of ``epochs`` epochs (the
    release's two-layer net trains 20,000 steps). ``l2`` adds
    ``l2 * sum of squared weight matrices`` (not biases) to the loss, as the
    release does; ``weight_decay`` is the optimiser's own. With
    ``schedule="step"`` the learning rate is multiplied by ``lr_decay`` at
    each epoch in ``milestones``; with ``schedule="cyclic"`` it rises
    linearly from 0 to ``lr`` over the first 2/5 of training and falls back
    to 0 at its end (the one cycle of Wong et al. 2020).

    ``guard > 0`` (adversarial training with an :class:`Adversary` only)
    attacks ``guard`` seeded training images after every epoch with PGD at
    the adversary's full :math:`\epsilon` (10 steps of :math:`\epsilon/4`
    from a random start) and stops training when their accuracy falls more
    than ``guard_drop`` (a fraction) below its best epoch's, whose weights
    it keeps: the guard against the catastrophic overfitting of one-step
    adversarial training.
    """

    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    l2: float = 0.0
    batch_size: int = 64
    epochs: int = 1
    steps: int = 0
    milestones: tuple = ()
    lr_decay: float = 0.1
    seed: int = 0
    amp: bool = False
    schedule: str = "step"
    guard: int = 0
    guard_drop: float = 0.2

    def __post_init__(self):
        checks.choice(self.optimizer, "optimizer", ("sgd", "adam"))
        checks.real(self.lr, "lr", 0, low_open=True)
        checks.real(self.momentum, "momentum", 0, 1, high_open=True)
        checks.flag(self.nesterov, "nesterov")
        checks.real(self.weight_decay, "weight_decay", 0)
        checks.real(self.l2, "l2", 0)
        checks.integer(self.batch_size, "batch_size", 1)
        checks.integer(self.epochs, "epochs", 0)
        checks.integer(self.steps, "steps", 0)
        if not isinstance(self.milestones, tuple):
            raise checks.fail("milestones", "a tuple of epochs", self.milestones)
        for i, m in enumerate(self.milestones):
            checks.integer(m, f"milestones[{i}]", 1)
        checks.real(self.lr_decay, "lr_decay", 0, 1, low_open=True)
        checks.seed(self.seed)
        checks.flag(self.amp, "amp")
        checks.choice(self.schedule, "schedule", SCHEDULES)
        checks.integer(self.guard, "guard", 0)
        checks.real(self.guard_drop, "guard_drop", 0, 1, low_open=True)

    def code_modules(self) -> tuple[str, ...]:
        """The guard's attack code (PGD) when the guard is on: a checkpoint trained with it is keyed by it."""
        if not self.guard:
            return ()
        from .attacks.registry import get

        return modules_of(get("pgd"))


#: The release's CNN recipe: SGD, momentum 0.5, learning rate 0.01, batch 64 (epochs: the chapter's).
CNN_TRAINING = TrainConfig(optimizer="sgd", lr=0.01, momentum=0.5, batch_size=64, epochs=20)
#: The release's two-layer recipe: Adam 1e-3, L2 weight 1e-3 on both weight matrices, 20,000 steps of 64.
TWO_LAYER_TRAINING = TrainConfig(optimizer="adam", lr=1e-3, l2=1e-3, batch_size=64, steps=20_000)


@dataclass(frozen=True)
class Adversary:
    r"""Madry et al.'s inner maximisation: ``attack(model, x, y, eps, **kwargs)`` from :mod:`sparsenb.attacks`.

    ``attack`` is a registered attack's name (:mod:`sparsenb.attacks.registry`):
    ``Adversary("pgd", 0.3, {"step": 0.01, "steps": 40})`` is PGD-40 with a
    random start; ``Adversary("pgd", 0.3, {"step": 0.375, "steps": 1})``
    is FGSM from a random start with a step of :math:`1.25\epsilon` (Wong et
    al. 2020); ``Adversary("fgsm", 0.3)`` is FGSM. Called as
    ``adversary(model, x, y)`` with the model in eval mode; random starts
    draw their seed from the training run's own (seeded) random stream.

    ``ramp > 0`` raises :math:`\epsilon` linearly from 0 over the first
    ``ramp`` epochs of training, and the ``step`` keyword in proportion
    (:meth:`at`); :func:`fit` asks for the adversary in force at the end of
    each step (the first step's is not at 0).
    """

    attack: str
    eps: float
    kwargs: tuple = ()
    ramp: float = 0.0

    def __init__(self, attack: str, eps: float, kwargs=None, ramp: float = 0.0):
        from .attacks.registry import get

        get(attack)  # a registered attack's name, else one error listing them
        object.__setattr__(self, "attack", attack)
        object.__setattr__(self, "eps", checks.real(eps, "eps", 0, 1))
        items = dict(kwargs or {})
        if not all(isinstance(k, str) for k in items):
            raise checks.fail("kwargs", "a dict of keyword arguments", kwargs)
        object.__setattr__(self, "kwargs", tuple(sorted(items.items())))
        object.__setattr__(self, "ramp", checks.real(ramp, "ramp", 0))

    def at(self, epoch: float) -> Adversary:
        r"""The adversary in force ``epoch`` epochs into training: :math:`\epsilon` and ``step`` times ``min(1, epoch / ramp)``."""
        share = 1.0 if not self.ramp else min(1.0, max(0.0, float(epoch)) / self.ramp)
        if not self.ramp:
            return self
        kwargs = dict(self.kwargs)
        if "step" in kwargs:
            kwargs["step"] = kwargs["step"] * share
        return Adversary(self.attack, self.eps * share, kwargs)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from .attacks.registry import get

        kwargs = dict(self.kwargs)
        if "restarts" in kwargs or self.attack == "pgd":
            kwargs.setdefault("seed", int(torch.randint(0, 2**62, (1,))))
        return get(self.attack)(model, x, y, self.eps, **kwargs)

    def code_modules(self) -> tuple[str, ...]:
        """The modules of the attack's code (a checkpoint trained against it is keyed by them)."""
        from .attacks.registry import get

        return modules_of(get(self.attack))


@dataclass(frozen=True)
class CropFlip:
    """The CIFAR augmentation of He et al. 2016: a random ``H x W`` crop of the image zero-padded by ``pad`` pixels, and a horizontal flip with probability 1/2.

    Called as ``augment(x)`` on a batch ``(B, C, H, W)``; every image draws
    its own offsets and flip from the torch random stream (seeded by the
    training run). Images stay in [0, 1]: padding is black.
    """

    pad: int = 4
    flip: bool = True

    def __post_init__(self):
        checks.integer(self.pad, "pad", 0)
        checks.flag(self.flip, "flip")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        checks.images(x, "x", channels=None, box=False, scan=False)
        B, _, H, W = x.shape
        p = self.pad
        dy, dx = (torch.randint(0, 2 * p + 1, (B,)) for _ in range(2))
        rows = (dy[:, None] + torch.arange(H)).to(x.device)  # (B, H): the crop's rows in the padded image
        cols = dx[:, None] + torch.arange(W)  # (B, W)
        if self.flip:
            flipped = torch.rand(B) < 0.5
            cols = torch.where(flipped[:, None], cols.flip(1), cols)
        cols = cols.to(x.device)
        padded = F.pad(x, (p, p, p, p))
        b = torch.arange(B, device=x.device)[:, None, None]
        return padded.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


@dataclass(frozen=True)
class SVMConfig:
    """Linear SVM (hinge loss) as in the release: scikit-learn ``LinearSVC``, default C.

    ``pm1=True`` fits on images mapped to [-1, 1] as the release did, then
    rewrites the classifier for [0, 1] inputs (``w = 2 w'``, ``b = b' - sum w'``).
    """

    C: float = 1.0
    pm1: bool = True
    max_iter: int = 10_000
    seed: int = 0

    def __post_init__(self):
        checks.real(self.C, "C", 0, low_open=True)
        checks.flag(self.pm1, "pm1")
        checks.integer(self.max_iter, "max_iter", 1)
        checks.seed(self.seed)


# --------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------
def fit(
    model_config,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    frontend: nn.Module | None = None,
    augment=None,
    adversary=None,
    checkpoint: str | Path | None = None,
    progress: bool = False,
    device=None,
) -> nn.Module:
    """Build ``model_config.build()`` under ``config.seed`` and train it on ``(x, y)``; return it in eval mode.

    With ``checkpoint`` (a file path) the training state is saved there after
    every epoch, atomically, and a later call with the same path resumes from
    it: a killed run continues where it stopped and ends with the same
    weights as an uninterrupted one; before each epoch it asks
    :func:`sparsenb.distributed.before_unit` whether the epoch (expected to
    take as long as the last) would end before the run's deadline, if any.
    Images may be float32 or float64 (batches
    go to the model in float32). Without augmentation or adversary an image
    reaches the model the same way in every epoch, so the front end's output
    is computed once per image instead of once per step (the same numbers;
    for the two-layer net it is most of the cost of a step).

    In a process group (``torchrun``, :mod:`sparsenb.distributed`) the model
    is trained with ``DistributedDataParallel``: every process draws the same
    batch (and the same augmentation), attacks and differentiates its own
    contiguous part of it, and the gradients are averaged with weights that
    make each step the whole batch's step. Only process 0 writes the
    checkpoint. The weights equal the one-process run's up to the order of
    floating-point sums, except where a layer draws or measures per process:
    dropout masks (drawn for each process's part) and batch-norm statistics
    (each part's own); there two runs agree in distribution, not in value.
    """
    x, y, device = check_fit(model_config, x, y, config, frontend, augment, adversary, device)
    checks.path(checkpoint, "checkpoint", optional=True)
    n, bs = len(x), min(config.batch_size, len(x))
    per_epoch = n // bs
    total = config.steps or config.epochs * per_epoch
    log = {"epochs": [], "stopped": None, "best": None}  # per epoch: seconds and the guard's accuracy
    best = None  # the guard's best epoch: (accuracy, weights)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)  # the initial weights, dropout and random starts come from here
        model = model_config.build().to(device)  # drawn on the CPU, then moved: the same init everywhere
        gen = torch.Generator().manual_seed(config.seed)  # batch order
        opt = _optimizer(model, config)
        graph = model if frontend is None else defended(frontend.to(device), model)
        _check_classes(graph, x, y, device)
        if frontend is not None and augment is None and adversary is None:
            # nothing changes an image between epochs: its front-end output is computed once, not once per step
            x, graph = sparsify_dataset(x.to(device, torch.float32), graph[0]), model
        size = distributed.world_size()
        step, log, best = _resume(checkpoint, model, opt, gen, log, best)
        guard = _guard(x, y, config, adversary)
        parallel = distributed.data_parallel(model, device)  # the model itself with one process
        train_graph = parallel if graph is model else defended(graph[0], parallel)
        bar = _progress(total, step, progress, type(model).__name__)
        with checks.trusted():  # x was checked on the way in; batches, attacks and augmentations stay in [0, 1]
            while step < total and log["stopped"] is None:
                if checkpoint is not None:  # the finished epochs are saved: a deadline may stop here, and a later call resumes
                    last = log["epochs"][-1]["seconds"] if log["epochs"] else 0.0
                    distributed.before_unit(last, f"epoch {len(log['epochs']) + 1} of training {type(model).__name__}")
                perm = torch.randperm(n, generator=gen)
                started = time.perf_counter()
                for i in range(0, per_epoch * bs, bs):
                    if step == total:
                        break
                    idx = perm[i : i + bs]
                    xb, yb = x[idx].to(device, torch.float32), y[idx].to(device)
                    if augment is not None:
                        xb = augment(xb)  # the whole batch in every process: the same random stream everywhere
                    mine = distributed.part(len(yb))  # this process's part of the batch (all of it with one process)
                    xb, yb = xb[mine], yb[mine]
                    if adversary is not None:
                        graph.eval()  # the model the adversary sees (front end included) is in eval mode
                        attack = adversary.at((step + 1) / per_epoch) if isinstance(adversary, Adversary) else adversary
                        xb = attack(graph, xb, yb).detach()
                    train_graph.train()
                    for group in opt.param_groups:
                        group["lr"] = _learning_rate(config, step, per_epoch, total)
                    with torch.enable_grad(), torch.autocast("cuda", torch.bfloat16, enabled=config.amp and device.type == "cuda"):
                        loss = _loss(train_graph(xb), yb)
                        if size > 1:  # DDP averages the processes' gradients: weigh each part's mean by its share
                            loss = loss * (len(yb) * size / len(idx))
                        if config.l2:
                            loss = loss + config.l2 * sum(p.pow(2).sum() for p in model.parameters() if p.dim() > 1)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    step += 1
                    bar.update(1)
                epoch = {"epoch": len(log["epochs"]) + 1, "seconds": round(time.perf_counter() - started, 2)}
                if guard is not None:
                    epoch["guard accuracy"] = guard(graph)
                    if best is None or epoch["guard accuracy"] >= best[0]:
                        best = (epoch["guard accuracy"], {k: v.detach().clone() for k, v in model.state_dict().items()})
                        log["best"] = epoch["epoch"]
                    elif epoch["guard accuracy"] < best[0] - config.guard_drop:  # catastrophic overfitting
                        model.load_state_dict(best[1])
                        log["stopped"] = epoch["epoch"]
                log["epochs"].append(epoch)
                if checkpoint is not None and step < total and log["stopped"] is None:
                    _save_state(checkpoint, model, opt, gen, step, device, log, best)
        bar.close()
    graph.eval()
    model.fit_log = log
    return model


def _guard(x: torch.Tensor, y: torch.Tensor, config: TrainConfig, adversary):
    """The guard of ``config`` (None when off): ``guard(graph)``, PGD accuracy (fraction) on fixed training images."""
    if not config.guard:
        return None
    from .attacks.registry import get

    pgd = get("pgd")
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(config.seed))[: config.guard]
    gx, gy, eps = x[idx], y[idx], adversary.eps

    def guard(graph: nn.Module) -> float:
        graph.eval()
        device = next(graph.parameters()).device
        xb, yb = gx.to(device, torch.float32), gy.to(device)
        xa = pgd(graph, xb, yb, eps, step=eps / 4, steps=10, seed=config.seed)
        with torch.no_grad():
            return round(float((graph(xa).argmax(1) == yb).float().mean()), 4)

    return guard


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for multiclass logits ``(B, L)``; the logistic loss for one logit ``(B,)``."""
    if logits.dim() == 1:
        return F.binary_cross_entropy_with_logits(logits.float(), y.float())
    return F.cross_entropy(logits.float(), y)


def _learning_rate(config: TrainConfig, step: int, per_epoch: int, total: int) -> float:
    """The learning rate of step ``step`` (from 0) of ``total``, ``per_epoch`` steps to an epoch.

    The cycle is evaluated at the end of the step (its first step is not taken at 0, as Wong et al.'s).
    """
    if config.schedule == "cyclic":
        t, peak = (step + 1) / total, CYCLE_PEAK
        return config.lr * (t / peak if t <= peak else max(0.0, (1 - t) / (1 - peak)))
    return config.lr * config.lr_decay ** sum(step / per_epoch >= m for m in config.milestones)


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay
    )


def _progress(total: int, done: int, show: bool, desc: str):
    import warnings

    with warnings.catch_warnings():  # no ipywidgets in a notebook kernel: plain text bars
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm(total=total, initial=done, desc=f"training {desc}", disable=not show, leave=False, mininterval=5)


def _save_state(path, model, opt, gen, step: int, device, log: dict, best) -> None:
    if not distributed.is_writer():  # every process holds the same state; process 0 writes it
        return
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "step": step,
        "generator": gen.get_state(),
        "rng": torch.get_rng_state(),
        "log": log,
    }
    if best is not None:
        state["best_accuracy"], state["best_model"] = best
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _resume(path, model, opt, gen, log: dict, best):
    """Load a saved training state into ``model``, ``opt`` and the random streams; return ``(step, log, best)``.

    Without a saved state: ``(0, log, best)`` as given.
    """
    if path is None or not distributed.decide(Path(path).is_file):
        return 0, log, best
    device = next(model.parameters()).device
    state = torch.load(path, weights_only=True, map_location="cpu")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    gen.set_state(state["generator"])
    torch.set_rng_state(state["rng"])
    if "cuda_rng" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    if "best_model" in state:
        best = (state["best_accuracy"], state["best_model"])
    return int(state["step"]), state.get("log", log), best


def _check_classes(graph: nn.Module, x: torch.Tensor, y: torch.Tensor, device) -> None:
    """Labels in [0, classes) of the model's logits (0/1 for one logit), before any training step."""
    with torch.no_grad():
        z = graph.eval()(x[:1].to(device, torch.float32))
    checks.labels(y, "y", classes=z.shape[1] if z.dim() == 2 else 2)


def check_fit(model_config, x, y, config, frontend=None, augment=None, adversary=None, device=None):
    """Check :func:`fit`'s arguments (one :class:`~sparsenb.checks.ArgumentError` naming the bad one); return ``(x, y, device)``."""
    if (
        not callable(getattr(model_config, "build", None))
        or not dataclasses.is_dataclass(model_config)
        or isinstance(model_config, type)
    ):
        raise checks.fail("model_config", "a model config with build(), e.g. sparsenb.models.CNNConfig()", model_config)
    if not isinstance(config, TrainConfig):
        raise checks.fail("config", "a TrainConfig", config)
    checks.images(x, "x", channels=None, box=True)
    if len(x) == 0:
        raise checks.ArgumentError("x", "must hold at least one training image")
    checks.labels(y, "y", n=len(x))
    if frontend is not None and not isinstance(frontend, nn.Module):
        raise checks.fail("frontend", "a front end module or None", frontend)
    checks.function(augment, "augment", optional=True)
    checks.function(adversary, "adversary", optional=True)
    if config.guard and not isinstance(adversary, Adversary):
        raise checks.ArgumentError("config", f"guard={config.guard} checks adversarial training: pass an Adversary")
    bs, size = min(config.batch_size, len(x)), distributed.world_size()
    if bs < size:  # every process trains on a part of each batch
        raise checks.ArgumentError("config", f"batch_size {bs} must be at least the number of processes ({size})")
    device = torch.device(device) if device is not None else x.device
    return x, y, device


# --------------------------------------------------------------------------
# the linear SVM (scikit-learn)
# --------------------------------------------------------------------------
def sparsify_dataset(x: torch.Tensor, frontend, batch_size: int = 4096) -> torch.Tensor:
    """Apply ``frontend`` to every image (no gradients); ``None`` returns ``x``."""
    if frontend is None:
        return x
    with torch.no_grad():
        return torch.cat([frontend(b) for b in x.split(batch_size)])


def train_linear_svm(x: torch.Tensor, y: torch.Tensor, config: SVMConfig = SVMConfig()) -> LinearClassifier:
    """Fit a linear SVM to images ``x`` with 0/1 labels ``y``; return it for [0, 1] inputs."""
    return train_linear_svms([x], y, config, workers=1)[0]


def train_linear_svms(xs, y: torch.Tensor, config: SVMConfig = SVMConfig(), workers: int = 1) -> list[LinearClassifier]:
    """:func:`train_linear_svm` for each image set of ``xs`` (one label vector ``y``), in ``workers`` processes.

    liblinear is single-threaded and seeds one global random stream per fit,
    so the fits go to separate processes (joblib's ``loky``), never threads:
    each fit is the one it would be alone, whatever ``workers``.
    """
    xs = list(xs)
    for i, x in enumerate(xs):
        checks.images(x, f"xs[{i}]")
        checks.labels(y, "y", n=len(x), classes=2)
    workers = checks.integer(workers, "workers", 1)
    labels = y.numpy()

    def inputs(x):
        X = x.flatten(1).double().numpy()
        return 2.0 * X - 1.0 if config.pm1 else X

    if workers == 1 or len(xs) < 2:
        fits = [_liblinear(inputs(x), labels, config.C, config.max_iter, config.seed) for x in xs]
    else:
        from joblib import Parallel, delayed
        from joblib.externals.loky import get_reusable_executor

        try:
            fits = Parallel(n_jobs=min(workers, len(xs)), backend="loky")(
                delayed(_liblinear)(inputs(x), labels, config.C, config.max_iter, config.seed) for x in xs
            )
        finally:  # idle workers kept for reuse slowed what ran next in this process 1.8x (measured): end them
            get_reusable_executor().shutdown(wait=True)
    out = []
    for x, (coef, intercept) in zip(xs, fits):
        w, b = torch.as_tensor(coef, dtype=torch.float64), float(intercept)
        if config.pm1:  # w'^T (2x - 1) + b' = (2w')^T x + (b' - sum w')
            w, b = 2.0 * w, b - float(w.sum())
        out.append(LinearClassifier.from_weights(w.to(x.dtype), b, tuple(x.shape[1:])))
    return out


def _liblinear(X, labels, C: float, max_iter: int, seed: int):
    """scikit-learn's ``LinearSVC`` (hinge loss, the dual) on ``X``: ``(coef, intercept)`` as NumPy (a process pool runs it)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    svm = LinearSVC(loss="hinge", C=C, dual=True, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # hinge + liblinear rarely reports convergence
        svm.fit(X, labels)
    return svm.coef_[0].copy(), float(svm.intercept_[0])
