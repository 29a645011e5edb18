"""Training the paper's classifiers, seeded, with checkpoints cached by their settings.

Each model has a plain dataclass config (nanoGPT style); a config and the
training data define a checkpoint. :func:`cached` trains once and stores the
result under ``<cache>/checkpoints/<name>-<hash>.pt`` (written atomically), so
re-executing a chapter reuses it. The defense retrains on sparsified images,
sparsified beforehand as in the authors' release (the front end is not in
the training graph).
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .cache import atomic_write_bytes, cache_dir
from .models import LinearClassifier, NielsenCNN, TwoLayerNet

__all__ = [
    "SVMConfig",
    "TwoLayerConfig",
    "CNNConfig",
    "train_linear_svm",
    "train_two_layer",
    "train_cnn",
    "sparsify_dataset",
    "data_fingerprint",
    "model_fingerprint",
    "cached",
    "trained",
]


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


@dataclass(frozen=True)
class TwoLayerConfig:
    """The release's 3-vs-7 network: FC 10 (ReLU) -> 1 logit, Adam 1e-3, L2 weight 1e-3."""

    hidden: int = 10
    steps: int = 20_000
    batch_size: int = 64
    lr: float = 1e-3
    l2: float = 1e-3
    seed: int = 0


@dataclass(frozen=True)
class CNNConfig:
    """The release's 4-layer CNN: SGD, momentum 0.5, lr 0.01, dropout 0.5, cross-entropy."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.5
    dropout: float = 0.5
    seed: int = 0


# --------------------------------------------------------------------------
def sparsify_dataset(x: torch.Tensor, frontend, batch_size: int = 4096) -> torch.Tensor:
    """Apply ``frontend`` to every image (no gradients); ``None`` returns ``x``."""
    if frontend is None:
        return x
    with torch.no_grad():
        return torch.cat([frontend(b) for b in x.split(batch_size)])


def _batches(n: int, batch_size: int, generator: torch.Generator):
    while True:
        perm = torch.randperm(n, generator=generator)
        for i in range(0, n - batch_size + 1, batch_size):
            yield perm[i : i + batch_size]


def train_linear_svm(x: torch.Tensor, y: torch.Tensor, config: SVMConfig = SVMConfig()) -> LinearClassifier:
    """Fit a linear SVM to images ``x`` with 0/1 labels ``y``; return it for [0, 1] inputs."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    X = x.flatten(1).double().numpy()
    if config.pm1:
        X = 2.0 * X - 1.0
    svm = LinearSVC(loss="hinge", C=config.C, dual=True, max_iter=config.max_iter, random_state=config.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # hinge + liblinear rarely reports convergence
        svm.fit(X, y.numpy())
    w = torch.as_tensor(svm.coef_[0], dtype=torch.float64)
    b = float(svm.intercept_[0])
    if config.pm1:  # w'^T (2x - 1) + b' = (2w')^T x + (b' - sum w')
        w, b = 2.0 * w, b - float(w.sum())
    return LinearClassifier.from_weights(w.to(x.dtype), b, tuple(x.shape[1:]))


def train_two_layer(x: torch.Tensor, y: torch.Tensor, config: TwoLayerConfig = TwoLayerConfig(), progress: bool = False) -> TwoLayerNet:
    """Adam on the sigmoid cross-entropy plus ``l2 * sum(W^2)`` over both weight matrices."""
    from tqdm.auto import tqdm

    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        model = TwoLayerNet(config.hidden, x[0].numel())
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    yf = y.to(torch.float32)
    batches = _batches(len(x), min(config.batch_size, len(x)), gen)
    model.train()
    with torch.enable_grad():  # whatever the caller's grad mode
        for _ in tqdm(range(config.steps), desc="two-layer net", disable=not progress, leave=False):
            idx = next(batches)
            loss = F.binary_cross_entropy_with_logits(model(x[idx]), yf[idx])
            loss = loss + config.l2 * (model.hidden.weight.pow(2).sum() + model.out.weight.pow(2).sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def train_cnn(x: torch.Tensor, y: torch.Tensor, config: CNNConfig = CNNConfig(), progress: bool = False) -> NielsenCNN:
    """SGD with momentum on the softmax cross-entropy, dropout on in training."""
    from tqdm.auto import tqdm

    with torch.random.fork_rng(), torch.enable_grad():  # dropout draws from the global RNG
        torch.manual_seed(config.seed)
        model = NielsenCNN(dropout=config.dropout).to(x.device)  # drawn on the CPU, then moved: same init everywhere
        gen = torch.Generator().manual_seed(config.seed)
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
        bs = min(config.batch_size, len(x))
        steps_per_epoch = len(x) // bs
        batches = _batches(len(x), bs, gen)
        model.train()
        for _ in tqdm(range(config.epochs * steps_per_epoch), desc="CNN", disable=not progress, leave=False):
            idx = next(batches)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


# --------------------------------------------------------------------------
def data_fingerprint(*tensors: torch.Tensor) -> str:
    """A short hash of the training data (part of a checkpoint's key)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def model_fingerprint(model: nn.Module) -> str:
    """A short hash of a model's weights and buffers (in float32, so any dtype or device agrees)."""
    return data_fingerprint(*[t.float() for t in model.state_dict().values()])


def cached(name: str, key: dict, train: Callable[[], nn.Module], folder: Path | None = None) -> nn.Module:
    """Return the model ``train()`` builds, trained once per ``(name, key)`` and then loaded.

    ``key`` holds everything that defines the model (configs as dicts, the
    front end's settings, :func:`data_fingerprint` of the training data). The
    checkpoint is the pickled module, written atomically.
    """
    folder = Path(folder) if folder else cache_dir() / "checkpoints"
    digest = hashlib.sha256(json.dumps(_jsonable(key), sort_keys=True).encode()).hexdigest()[:16]
    path = folder / f"{name}-{digest}.pt"
    if path.is_file():
        return torch.load(path, weights_only=False, map_location="cpu").eval()  # callers move it
    model = train()
    buf = io.BytesIO()
    torch.save(model, buf)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(_jsonable(key), indent=1, sort_keys=True).encode())
    return model.eval()


def _jsonable(obj):
    if hasattr(obj, "__dataclass_fields__"):
        return {type(obj).__name__: asdict(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


_TRAINERS = {SVMConfig: train_linear_svm, TwoLayerConfig: train_two_layer, CNNConfig: train_cnn}


def trained(config, x: torch.Tensor, y: torch.Tensor, frontend=None, progress: bool = False) -> nn.Module:
    """The classifier ``config`` trains on ``x, y`` (sparsified by ``frontend`` first, if given), cached.

    The checkpoint's key is the config, the front end's settings and a
    fingerprint of the training data, so any change retrains.
    """
    kind = type(config)
    if kind not in _TRAINERS:
        raise TypeError(f"config must be one of {[k.__name__ for k in _TRAINERS]}, got {kind.__name__}")
    key = {"config": config, "frontend": None if frontend is None else frontend.settings(), "data": data_fingerprint(x, y)}

    def train():
        xs = sparsify_dataset(x, frontend)
        if kind is SVMConfig:
            return train_linear_svm(xs, y, config)
        return _TRAINERS[kind](xs, y, config, progress=progress)

    return cached(kind.__name__.removesuffix("Config").lower(), key, train)
