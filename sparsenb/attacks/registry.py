"""Attacks by name: the registry the experiment grid, the audit and adversarial training look them up in.

Every attack function of :mod:`sparsenb.attacks` is registered under a short
name (``"pgd"``, ``"square"``, ``"adaptive"``) by the decorator
:func:`register` beside its definition, with two facts the grid needs:

* ``uses_gradient``: whether it differentiates the model (so the front end's
  gradient treatment matters); black-box attacks (Square) do not;
* ``batch_invariant``: whether an image gets the same result in any batch;
  Square draws one square per step for the whole batch, so its results
  depend on the batch and its batch size is part of a result's key.

A stored result is keyed by the name and by the code of the module that
defines the function (:func:`sparsenb.cache.code_of`), never by a module
path written in a string: moving an attack to another file changes no name.
"""
from __future__ import annotations

from typing import Callable

from .. import checks

__all__ = ["register", "get", "names", "REGISTRY"]

#: name -> attack function (filled by the attack modules when :mod:`sparsenb.attacks` is imported).
REGISTRY: dict[str, Callable] = {}


def register(name: str, *, uses_gradient: bool = True, batch_invariant: bool = True):
    """Register the decorated attack function under ``name`` (the function itself is returned unchanged)."""

    def decorate(fn: Callable) -> Callable:
        if name in REGISTRY and REGISTRY[name] is not fn:
            raise ValueError(f"two attacks registered as {name!r}: {REGISTRY[name].__qualname__} and {fn.__qualname__}")
        fn.uses_gradient = uses_gradient
        fn.batch_invariant = batch_invariant
        fn.attack_name = name
        REGISTRY[name] = fn
        return fn

    return decorate


def _load() -> None:
    import importlib

    importlib.import_module("sparsenb.attacks")  # its modules register their attacks when imported


def get(name: str) -> Callable:
    """The attack registered as ``name``; an unknown name raises :class:`~sparsenb.checks.ArgumentError` listing the names."""
    _load()
    if not isinstance(name, str) or name not in REGISTRY:
        raise checks.fail("attack", f"the name of a registered attack, one of {sorted(REGISTRY)}", name)
    return REGISTRY[name]


def names() -> tuple[str, ...]:
    """Every registered attack name, sorted."""
    _load()
    return tuple(sorted(REGISTRY))
