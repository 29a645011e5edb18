r"""Many processes through PyTorch's own engine (``torch.distributed``): who computes what, and who writes.

Under ``torchrun --nproc_per_node N`` every process runs the same code (the
chapters, or :func:`sparsenb.book.precompute`), and the heavy calls divide
the work between them:

* :func:`sparsenb.lab.grid.run` gives each process whole batches of the
  images (batch ``b`` to process ``b mod N``: no padding, no image twice),
  attacks them exactly as one process would, and gathers the per-image
  outcomes back into image order (:func:`shard`, :func:`gather`);
* :func:`sparsenb.training.fit` trains with ``DistributedDataParallel``:
  every process draws the same batch, keeps its own part of it
  (:func:`part`) and the gradients are averaged so that a step is the step
  of the whole batch (:func:`data_parallel`).

Three rules keep the processes in step and the cache consistent:

1. **One reader decides.** Whether a result or checkpoint is already stored
   is read by process 0 and broadcast (:func:`decide`), so no process skips
   a computation another one joins.
2. **One writer.** Only process 0 writes the shared cache (results,
   checkpoints: :func:`is_writer`), after the others have handed it their
   part; a process's unfinished share of an attack cell is its own file.
3. **Same code everywhere.** Everything else (figures, small computations)
   runs in every process; it is cheap and keeps the collective calls in the
   same order.

A run can be given a deadline (``$SPARSENB_DEADLINE``, a Unix time:
:func:`before_unit`): the long loops (an attack cell's batches, a
training's epochs) ask before each unit of work whether it would finish in
time, and stop with :class:`DeadlineReached` instead of starting it; what
finished is stored, and the next run resumes from it.

Every stored result is keyed by what computed it, device and precision
included (:func:`compute_key`): the book's precision policy
(:func:`set_precision`) keeps float32 matmuls and convolutions in full
float32 on every device, so a result computed on a GPU and one computed
on a CPU never stand in for each other unless a run says so
(``$SPARSENB_COMPUTE``).

Outside ``torchrun`` (or with one process) every function here is the
identity of the one-process case, so the rest of the package reads the same
either way. :func:`init` joins the process group that ``torchrun``
describes in the environment: NCCL on GPUs, gloo on CPUs.
"""
from __future__ import annotations

import datetime
import os
import time

import torch

from . import checks

__all__ = [
    "init",
    "active",
    "rank",
    "world_size",
    "is_writer",
    "device",
    "agree",
    "decide",
    "gather",
    "barrier",
    "shard",
    "part",
    "data_parallel",
    "DEADLINE_ENV",
    "DeadlineReached",
    "deadline",
    "before_unit",
    "COMPUTE_ENV",
    "set_precision",
    "compute_key",
]

#: The environment variable that makes a run read and write results under another compute key (:func:`compute_key`).
COMPUTE_ENV = "SPARSENB_COMPUTE"

#: The environment variable holding a run's deadline, a Unix time in seconds (:func:`before_unit`).
DEADLINE_ENV = "SPARSENB_DEADLINE"

#: How long a process waits for the others at a collective call (a training or a sweep may run for hours on process 0 alone).
TIMEOUT = datetime.timedelta(hours=48)


def _dist():
    import torch.distributed as dist

    return dist


def init(backend: str | None = None) -> torch.device:
    """Join the process group ``torchrun`` describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...); return this process's device.

    ``backend``: ``"nccl"`` or ``"gloo"``; by default NCCL where a GPU is
    available and gloo otherwise. With ``WORLD_SIZE`` unset or 1 nothing is
    joined. Calling it again in a process that has joined does nothing.
    """
    if backend is not None:
        checks.choice(backend, "backend", ("gloo", "nccl"))
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and not _dist().is_initialized():
        cuda = torch.cuda.is_available()
        backend = backend or ("nccl" if cuda else "gloo")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        _dist().init_process_group(backend, timeout=TIMEOUT)
    set_precision()
    return device()


def active() -> bool:
    """Whether this process is one of several in an initialised process group."""
    dist = _dist()
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return _dist().get_rank() if active() else 0


def world_size() -> int:
    """The number of processes (1 outside a process group)."""
    return _dist().get_world_size() if active() else 1


def is_writer() -> bool:
    """Whether this process writes the shared cache (rank 0, or the only process)."""
    return rank() == 0


def device() -> torch.device:
    """``cuda:<LOCAL_RANK>`` in a process group on GPUs, ``cuda`` alone with a GPU, else ``cpu``."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    if active():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cuda")


def agree(value):
    """Process 0's ``value``, in every process (``value`` itself with one process). Must be JSON- or pickle-able."""
    if not active():
        return value
    box = [value if rank() == 0 else None]
    _dist().broadcast_object_list(box, src=0)
    return box[0]


def decide(read):
    """``read()`` in process 0 only, its answer in every process (rule 1: whether something is stored is read once)."""
    return agree(read() if is_writer() else None)


def gather(value) -> list:
    """Every process's ``value``, in rank order, in every process (``[value]`` with one process)."""
    if not active():
        return [value]
    out = [None] * world_size()
    _dist().all_gather_object(out, value)
    return out


def barrier() -> None:
    """Wait until every process gets here (nothing with one process)."""
    if active():
        _dist().barrier()


def shard(n: int) -> list[int]:
    """This process's share of ``n`` work items: ``rank, rank + N, rank + 2N, ...`` (all of them with one process).

    Every item goes to exactly one process; process ``r`` gets
    ``ceil((n - r) / N)`` of them, so the shares differ by at most one.
    """
    n = checks.integer(n, "n", 0)
    return list(range(rank(), n, world_size()))


def part(n: int) -> slice:
    """This process's contiguous part of a batch of ``n`` (``torch.tensor_split`` sizes; all of it with one process)."""
    n = checks.integer(n, "n", 0)
    size, r = world_size(), rank()
    base, extra = divmod(n, size)
    start = r * base + min(r, extra)
    return slice(start, start + base + (r < extra))


def data_parallel(model: torch.nn.Module, dev: torch.device) -> torch.nn.Module:
    """``model`` wrapped in ``DistributedDataParallel`` in a process group (gradients averaged over processes), else ``model``.

    The wrapper shares ``model``'s parameters: train through the wrapper,
    save ``model.state_dict()``. Batch-norm statistics are each process's
    own (PyTorch's default; ``SyncBatchNorm`` needs a GPU), with process 0's
    running statistics broadcast at every forward pass.
    """
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[dev] if dev.type == "cuda" else None)


# --------------------------------------------------------------------------
# a deadline for long runs
# --------------------------------------------------------------------------
class DeadlineReached(RuntimeError):
    """A unit of work was not started because it would not have finished before the run's deadline."""


def deadline() -> float | None:
    """The run's deadline (``$SPARSENB_DEADLINE``, a Unix time in seconds), or None when there is none."""
    value = os.environ.get(DEADLINE_ENV, "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise checks.ArgumentError(DEADLINE_ENV, f"must be a Unix time in seconds, got {value!r}") from None


def before_unit(expected_seconds: float, what: str) -> None:
    """Call before starting a unit of work expected to take ``expected_seconds``: raise :class:`DeadlineReached` if it would end after the deadline.

    Without a deadline it does nothing. In a process group process 0's clock
    decides for all (a collective call: every process must call it at the
    same point, e.g. before an epoch, not before a batch of its own share).
    ``what`` names the unit in the message.
    """
    end = deadline()
    if end is None:
        return
    expected_seconds = checks.real(expected_seconds, "expected_seconds", 0.0)
    late = agree(time.time() + expected_seconds > end)
    if late:
        raise DeadlineReached(f"{what} (about {expected_seconds:.0f} s) would not finish before the deadline; "
                              "what finished is stored, and the next run resumes from it")


# --------------------------------------------------------------------------
# precision, and what computed a result
# --------------------------------------------------------------------------
def set_precision() -> None:
    """The book's precision policy: float32 matmuls and convolutions in full float32, TF32 off, on every device.

    PyTorch's defaults differ by operation (cuDNN convolutions may use TF32,
    matmuls not); the book fixes both, so a GPU's float32 is the CPU's up to
    the order of operations. :func:`init` (and so every chapter's setup)
    applies it.
    """
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def compute_key(on=None) -> str:
    """What computes a result, for its key: the device type and the float32 precision, e.g. ``"cpu/fp32"``, ``"cuda/tf32"``.

    ``on`` is a device (or a tensor on it; default: this process's
    :func:`device`). Precision is ``fp32`` under :func:`set_precision`'s
    policy, ``tf32`` where TF32 or reduced-precision float32 matmuls are on.
    ``$SPARSENB_COMPUTE`` overrides it: a run on a CPU that sets
    ``SPARSENB_COMPUTE=cuda/fp32`` reads the results a GPU computed (say,
    imported with ``sparsenb-book import``) and files what it computes itself
    under that key too, by its own choice, which the pages state.
    """
    override = os.environ.get(COMPUTE_ENV, "").strip()
    if override:
        return override
    if on is None:
        kind = device().type
    elif isinstance(on, torch.Tensor):
        kind = on.device.type
    else:
        kind = torch.device(on).type
    reduced = torch.get_float32_matmul_precision() != "highest"
    if kind == "cuda":
        reduced = reduced or torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32
    return f"{kind}/{'tf32' if reduced else 'fp32'}"
