r"""Moving stored work between machines: the result store packed into a few files, and merged back.

Work computed on one machine (a GPU lent for minutes, a preemptible node)
is the store's files: attack cells (finished, or per batch so far),
stored computations, checkpoints and unfinished trainings (per epoch).
:func:`pack` puts them into at most ``max_parts`` gzipped tar files, each
under ``part_bytes`` (the defaults, 8 files under 16 MiB, are what a
device machine here hands back); :func:`unpack` merges such files into
another machine's store. A key names its file, so the same key means the
same work: a file already present is kept unless the incoming one is a
finished attack cell or computation where the present one is unfinished.
A book executed after the merge finds the work stored and recomputes
nothing (:mod:`sparsenb.lab.store`).
"""
from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

from .. import checks
from ..cache import atomic_write_bytes, cache_dir

__all__ = ["STORE_FOLDERS", "PART_BYTES", "MAX_PARTS", "pack", "unpack"]

#: The store's folders under the cache folder (the data sets are not part of it).
STORE_FOLDERS = ("checkpoints", "results")
#: Each packed file stays under this size (bytes) ...
PART_BYTES = 16 * 2**20
#: ... and there are at most this many of them.
MAX_PARTS = 8
_PREFIX = "sparsenb-store"


def _stored_files(root: Path, since: float | None) -> list[Path]:
    files = []
    for name in STORE_FOLDERS:
        for p in sorted((root / name).rglob("*")):
            if p.is_file() and not p.name.startswith(".") and (since is None or p.stat().st_mtime >= since):
                files.append(p)  # a name starting with "." is an atomic write under way
    return files


def pack(out, since: float | None = None, folder=None, part_bytes: int = PART_BYTES, max_parts: int = MAX_PARTS) -> list[Path]:
    """Pack the store's files (those written at or after ``since``, a Unix time; all of them without) into ``out``.

    ``folder`` is the cache folder (default :func:`sparsenb.cache.cache_dir`).
    The files go, in path order, into ``sparsenb-store-<i>of<n>.tar.gz`` in
    the folder ``out``, each under ``part_bytes``; if they need more than
    ``max_parts`` such files, or one file alone does not fit, it raises before
    writing anything. Returns the packed files' paths (none when nothing was
    stored since ``since``).
    """
    root = Path(folder) if folder else cache_dir()
    if since is not None:
        since = checks.real(since, "since")
    part_bytes = checks.integer(part_bytes, "part_bytes", 4096)
    max_parts = checks.integer(max_parts, "max_parts", 1)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise checks.ArgumentError("out", f"must be a folder, got the file {out}")
    files = _stored_files(root, since)
    budget = int(0.97 * part_bytes) - 4096  # room for the gzip stream's own overhead and the tar end blocks
    parts: list[list[Path]] = []
    used: list[int] = []
    for p in files:
        size = len(gzip.compress(p.read_bytes(), compresslevel=6)) + 1024  # a tar header and its padding
        if size > budget:
            raise checks.ArgumentError("part_bytes", f"is too small for {p.relative_to(root)} ({size} bytes packed)")
        if not parts or used[-1] + size > budget:
            parts.append([])
            used.append(0)
        parts[-1].append(p)
        used[-1] += size
    if len(parts) > max_parts:
        raise checks.ArgumentError("max_parts", f"is {max_parts}, but the {len(files)} stored files need {len(parts)} "
                                   f"files of under {part_bytes} bytes: pack a shorter stretch of work (since=...)")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, members in enumerate(parts, 1):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
            for p in members:
                tar.add(p, arcname=p.relative_to(root).as_posix(), recursive=False)
        data = buf.getvalue()
        if len(data) >= part_bytes:  # the estimate above leaves a margin; this never happened
            raise RuntimeError(f"packed file {i} came out at {len(data)} bytes, over {part_bytes}")
        written.append((out / f"{_PREFIX}-{i}of{len(parts)}.tar.gz", data))
    return [atomic_write_bytes(path, data) for path, data in written]


def _members(path: Path) -> dict[str, bytes]:
    """A packed file's members, checked: regular files inside the store's folders, nothing else."""
    found = {}
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for m in tar.getmembers():
                parts = Path(m.name).parts
                if not m.isfile() or m.name.startswith("/") or ".." in parts or not parts or parts[0] not in STORE_FOLDERS:
                    raise checks.ArgumentError("paths", f"{path} holds {m.name!r}, which is not a file of the store")
                found[Path(m.name).as_posix()] = tar.extractfile(m).read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise checks.ArgumentError("paths", f"{path} is not a packed store file ({err})") from None
    return found


def _finished(data: bytes) -> bool | None:
    """For a stored JSON result: whether it is finished (None for other files)."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return bool(value.get("complete")) if isinstance(value, dict) and "complete" in value else None


def unpack(paths, folder=None) -> dict[str, int]:
    """Merge packed files (:func:`pack`'s) into the store of ``folder`` (default: the cache folder).

    Every file is read and checked before anything is written. A stored
    file that is absent is added; one that is present with the same bytes is
    left; a present, unfinished result is replaced by an incoming finished
    one; otherwise the present file is kept; an unfinished training whose
    finished checkpoint is there (or comes too) is left out. Returns the
    counts ``added``, ``same``, ``replaced``, ``kept`` and ``superseded``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise checks.ArgumentError("paths", "must name at least one packed file")
    for p in paths:
        if not p.is_file():
            raise checks.ArgumentError("paths", f"{p} is not a file")
    incoming: dict[str, bytes] = {}
    for p in paths:
        incoming.update(_members(p))
    root = Path(folder) if folder else cache_dir()
    counts = {"added": 0, "same": 0, "replaced": 0, "kept": 0, "superseded": 0}
    for name, data in sorted(incoming.items()):
        target = root / name
        if name.endswith(".train.pt"):  # an unfinished training: nothing to resume once its checkpoint is there
            done = name.removesuffix(".train.pt") + ".pt"
            if done in incoming or (root / done).is_file():
                counts["superseded"] += 1
                continue
        if not target.is_file():
            atomic_write_bytes(target, data)
            counts["added"] += 1
            continue
        present = target.read_bytes()
        if present == data:
            counts["same"] += 1
        elif _finished(data) and _finished(present) is False:
            atomic_write_bytes(target, data)
            counts["replaced"] += 1
        else:
            counts["kept"] += 1
    return counts
