"""The book's recurring figure types, drawn from results (chapters only choose what to show).

Each function takes plain arrays and returns a matplotlib figure; the
chapter passes it to :func:`sparsenb.book.page.figure`, which lays it out, glues
it and closes it.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "plot_band",
    "attack_cost",
    "accuracy_errorbar",
    "image_rows",
    "histograms_by_outcome",
    "histograms",
    "band_over_steps",
]


def accuracy_errorbar(ax, xs, intervals, **kwargs):
    """Accuracies with their 95% intervals as error bars on ``ax``.

    ``intervals`` holds one ``(p, lo, hi)`` per x, as
    :meth:`sparsenb.lab.grid.Outcomes.accuracy` returns them; ``kwargs`` go
    to ``ax.errorbar`` (``fmt``, ``label``...).
    """
    p, lo, hi = np.asarray(intervals, dtype=float).T
    return ax.errorbar(xs, p, yerr=[p - lo, hi - p], capsize=2, **kwargs)


def image_rows(rows, titles=None, true_labels=None):
    """A grid of grey images: ``rows`` is a list of ``(label, images (n, 1, H, W), predictions or None)``.

    Predictions are written above each image, green where they equal
    ``true_labels`` and red where not; ``titles`` (one per column) go above
    the first row.
    """
    import matplotlib.pyplot as plt

    n = len(rows[0][1])
    fig, axes = plt.subplots(len(rows), n, figsize=(2.0 * n, 2.1 * len(rows)), squeeze=False)
    for r, (label, images, pred) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(np.asarray(images[c, 0].detach().cpu()), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 and titles is not None:
                ax.set_title(titles[c], fontsize=10)
            if pred is not None:
                ok = true_labels is not None and int(pred[c]) == int(true_labels[c])
                ax.set_title(
                    f"predicted {int(pred[c])}", fontsize=10, color="tab:green" if ok else "tab:red"
                )
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    return fig


def histograms_by_outcome(
    panels: dict, bins, xlabel: str, labels=("defense holds", "defense fails")
):
    """One panel per key of ``panels`` (``title -> (values, held)``): densities of ``values`` split by ``held``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.2 * len(panels), 3.4), sharey=True, squeeze=False
    )
    for ax, (title, (values, held)) in zip(axes[0], panels.items()):
        values, held = np.asarray(values), np.asarray(held, dtype=bool)
        for mask, label, color in ((held, labels[0], "tab:blue"), (~held, labels[1], "tab:red")):
            if mask.any():
                ax.hist(
                    values[mask],
                    bins=bins,
                    density=True,
                    alpha=0.55,
                    color=color,
                    label=f"{label} ({mask.sum()})",
                )
        ax.set_title(title)
        ax.set_xlabel(xlabel)
    axes[0, 0].set_ylabel("density")
    axes[0, 0].legend(fontsize=8, loc="upper left")
    return fig


def histograms(panels: dict, xlabel: str, bins: int = 30, marker=None, rows: int = 1):
    """One density histogram per key of ``panels`` (``title -> values``), in ``rows`` rows; ``marker`` draws a dashed line."""
    import matplotlib.pyplot as plt

    cols = int(np.ceil(len(panels) / rows))
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    colors = ["tab:blue", "tab:orange", "tab:purple", "tab:green"]
    for i, (ax, (title, values)) in enumerate(zip(axes.flat, panels.items())):
        values = np.asarray(values)
        if len(values):
            ax.hist(values, bins=bins, density=True, color=colors[i % len(colors)])
        if marker is not None:
            ax.axvline(marker, color="k", ls="--", lw=1)
        ax.set_title(title)
        ax.set_xlabel(xlabel if isinstance(xlabel, str) else xlabel[i])
    for ax in axes[:, 0]:
        ax.set_ylabel("density")
    return fig


def band_over_steps(mean, std, xlabel: str, ylabel: str, title: str, marker=None):
    """A mean curve over steps 1..n with a one-standard-deviation band; ``marker`` draws a dotted vertical line."""
    import matplotlib.pyplot as plt

    mean, std = np.asarray(mean), np.asarray(std)
    steps = np.arange(1, len(mean) + 1)
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    ax.plot(steps, mean, color="tab:orange", lw=1)
    ax.fill_between(
        steps, np.maximum(mean - std, 0), mean + std, color="tab:orange", alpha=0.25, lw=0
    )
    if marker is not None and marker <= len(mean):
        ax.axvline(marker, color="grey", ls=":", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def attack_cost(*frames, labels=()):
    """Accuracy each attack leaves against the model evaluations it spent per image, one marker style per frame.

    ``frames`` are :meth:`sparsenb.lab.audit.WorstCase.frame` tables indexed by
    attack (columns "accuracy %" and "model evaluations / image"); attacks
    without a count (outcomes credited from another run) are left out. The
    first frame's markers are filled, the others hollow; a dashed line per
    frame marks its worst case over all attacks.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    names = list(
        dict.fromkeys(
            a for f in frames for a in f.index if a not in ("clean", "worst case, all attacks")
        )
    )
    for i, f in enumerate(frames):
        label = labels[i] if i < len(labels) else f"model {i + 1}"
        for j, a in enumerate(names):
            if a not in f.index or f.loc[a, "model evaluations / image"] is None:
                continue
            ev = float(f.loc[a, "model evaluations / image"])
            if not np.isfinite(ev) or ev <= 0:
                continue
            c = colors[j % len(colors)]
            ax.scatter(
                [ev],
                [f.loc[a, "accuracy %"]],
                s=60,
                color=c if i == 0 else "none",
                edgecolors=c,
                label=a if i == 0 else None,
                zorder=3,
            )
        ax.axhline(
            f.loc["worst case, all attacks", "accuracy %"],
            ls="--",
            lw=1,
            color="0.3" if i == 0 else "0.6",
        )
        ax.annotate(
            f"worst case, {label}",
            (0.01, f.loc["worst case, all attacks", "accuracy %"]),
            xycoords=("axes fraction", "data"),
            va="bottom",
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_xlabel("model evaluations per image")
    ax.set_ylabel("accuracy under attack (%)")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def plot_band(ax, summary, x: str, label=None, band: str = "ci", color=None, marker="o", **kw):
    """Plot a :func:`~sparsenb.lab.stats.summarize` table: the mean as a line, ``band`` ("ci" or "quantile") shaded."""
    s = summary.sort_values(x)
    (line,) = ax.plot(s[x], s["mean"], marker=marker, ms=3.5, label=label, color=color, **kw)
    lo, hi = ("ci_low", "ci_high") if band == "ci" else ("q_low", "q_high")
    ax.fill_between(s[x], s[lo], s[hi], color=line.get_color(), alpha=0.2, lw=0)
    return line
