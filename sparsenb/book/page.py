"""What a page calls to put numbers and figures on itself.

The pages only read results and narrate; these helpers are the single way
they hand values to the text (``{glue:text}`` roles) and finish figures, so
every page does it the same way.

* :func:`glue`: ``glue(K=27, clean=98.4)`` glues each value under its name.
* :func:`figure`: lays out a matplotlib figure, glues it under ``name`` and
  closes it (so it appears only where the page places it).
* :func:`paper`: the paper's number from ``paper_numbers.csv``
  (:func:`sparsenb.lab.paper.paper_number`), glued under ``name`` so that
  prose quotes it instead of typing it.
* :func:`record`: hands the chapter's comparison with the paper to the
  scorecard page (:func:`sparsenb.book.scorecard.record`).
* :func:`claim`: a conclusion typed in prose that rests on this run's
  numbers, shown when its condition holds and failing the build when not.
* :func:`setup`: the plot theme (:func:`theme`), autograd off, the device.
* :func:`provenance`: the note at the top of every page saying how it was
  produced (profile, versions, device).
"""

from __future__ import annotations

from ..lab.paper import paper_number

__all__ = [
    "glue",
    "figure",
    "paper",
    "record",
    "claim",
    "ClaimError",
    "theme",
    "setup",
    "provenance",
]


def glue(**values) -> None:
    """Glue every ``name=value`` for the page's ``{glue:text}`` roles (nothing is displayed)."""
    from myst_nb import glue as _glue

    for name, value in values.items():
        if (
            hasattr(value, "item") and getattr(value, "ndim", None) == 0
        ):  # numpy/torch scalars format like numbers
            value = value.item()
        _glue(name, value, display=False)


def figure(fig, name: str) -> None:
    """Finish ``fig`` (tight layout), glue it under ``name`` for a ``{glue:figure}`` and close it.

    Inside a kernel the glued figure carries an SVG beside the PNG: the page
    shows the PNG, and the build offers both for download under the
    figure's anchor (see :func:`sparsenb.book.execute.export_figures`).
    """
    import matplotlib.pyplot as plt

    fig.tight_layout()
    _png_and_svg()
    glue(**{name: fig})
    plt.close(fig)


def _png_and_svg() -> None:
    """Let the kernel's display formatter render matplotlib figures as PNG and SVG (no-op outside IPython)."""
    from IPython import get_ipython

    if get_ipython() is not None:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png", "svg")


def paper(name: str | None = None, **match) -> float:
    """The paper's number for ``match`` (one row of ``paper_numbers.csv``); glued under ``name`` if given."""
    value = paper_number(**match)
    if name is not None:
        glue(**{name: value})
    return value


def record(
    comparison,
    profile: str,
    where: str,
    why: dict | None = None,
    cannot: dict | None = None,
    reduced: dict | None = None,
    spread: dict | None = None,
) -> None:
    """Record the chapter's :class:`~sparsenb.lab.paper.Comparison` for the scorecard (nothing is displayed).

    ``where``: the label of the section discussing the disagreements;
    ``why``: ``{section: what differs by construction}``; ``cannot``:
    ``{section: why the paper's setting cannot run here}``; ``reduced``:
    ``{section: ("attack" or "training", what this profile reduced)}``;
    ``spread``: the spread between networks the chapter measured. Inside a
    build the record is stored with this execution's key
    (:func:`sparsenb.book.scorecard.record`).
    """
    from .scorecard import record as _record

    _record(comparison, profile, where, why, cannot, reduced, spread)


def theme() -> None:
    """The book's plot theme (seaborn, notebook context, white grid)."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid")


def setup():
    """Prepare a chapter's kernel and return its device.

    Sets the book's plot theme (:func:`theme`) and
    switches autograd off (every attack switches it on where it needs it);
    returns ``cuda`` when a GPU is available, else ``cpu``. Under ``torchrun``
    it joins the process group first and returns this process's device
    (:func:`sparsenb.distributed.init`).
    """
    import torch

    from .. import distributed

    theme()
    torch.set_grad_enabled(False)
    return distributed.init()


def provenance(profile: str, **details):
    """A short Markdown note of how the page was produced (profile, versions, device, the compute key of its results).

    When the build reads stored results from a results bundle
    (:data:`sparsenb.lab.store.RESULTS_ENV`, ``sparsenb-book build --results``),
    the note says which, at which commit it was computed, and whether this
    build's code is the same.
    """
    import datetime
    import os
    import platform

    import torch
    from IPython.display import Markdown

    device = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    from .. import distributed

    compute = f"`{distributed.compute_key()}`"
    if os.environ.get(distributed.COMPUTE_ENV, "").strip():
        compute += f" (set by `{distributed.COMPUTE_ENV}`: results may have been computed elsewhere)"
    from ..lab.store import RESULTS_ENV

    bundle = os.environ.get(RESULTS_ENV, "").strip()
    if bundle:
        from ..lab.bundle import describe

        compute += f"; **results read from** {describe(bundle)}"
    items = {
        "profile": f"`{profile}`",
        "executed": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "device": device,
        "results computed as": compute,
        "torch": torch.__version__,
        "python": platform.python_version(),
        **{k: f"`{v}`" for k, v in details.items()},
    }
    return Markdown(
        "```{admonition} How this page was produced\n:class: note\n"
        + "; ".join(f"**{k}**: {v}" for k, v in items.items())
        + ".\n```"
    )


class ClaimError(AssertionError):
    """A conclusion a page states does not hold for the numbers of this run (the build fails)."""


def claim(condition, text: str):
    """A sentence that rests on this run's numbers: shown on the page when ``condition`` holds, else the build fails.

    ``condition`` is the check, computed from the same numbers the page
    glues (a ``bool``); ``text`` is the sentence (MyST Markdown), shown as
    the cell's output. Prose that would be wrong for other numbers goes
    through here, so a rebuild that changes the numbers cannot leave it
    standing: :class:`ClaimError` names the sentence. Put it in a cell
    tagged ``remove-input``.
    """
    from IPython.display import Markdown

    from .. import checks

    if not isinstance(text, str) or not text.strip():
        raise checks.fail("text", "the sentence the page states, as a non-empty string", text)
    if hasattr(condition, "item") and getattr(condition, "ndim", None) == 0:  # numpy/torch booleans
        condition = condition.item()
    if not isinstance(condition, bool):
        raise checks.fail("condition", "a bool computed from the page's numbers", condition)
    if not condition:
        raise ClaimError(f"the page states {text!r}, but this run's numbers do not support it")
    return Markdown(text)
