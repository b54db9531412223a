"""Static figures of the report (matplotlib, Agg backend): the segment × narrative heatmap, cross-cutting
shares with their intervals, and the supply → targeted → delivered funnel.

Static on purpose: the report must open offline with no script, and plotly's static export needs a
browser. Each figure is written as SVG (embedded in the report as a ``data:`` image, so no SVG script can
run) and PNG (for articles). SVG text is drawn as paths and the output carries no date, so the same
numbers give the same bytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["cross_cutting_figure", "data_uri", "funnel_figure", "heatmap_figure", "to_png", "to_svg"]

plt.rcParams.update({"svg.hashsalt": "bubblelens", "svg.fonttype": "path", "font.size": 9})


def heatmap_figure(segments: Sequence[str], narratives: Sequence[str], P: np.ndarray, *,
                   title: str = "", groups: Sequence[str | None] | None = None, note: str = "") -> Figure:
    """Rows: segments; columns: narratives; colour and label: the share ``p[s, k]`` in percent.

    ``groups`` (one country per row, rows of a country next to each other; ``present.rows``): a line
    between countries and the country's code at the right of its rows. ``note``: a line under the
    figure (how many rows were left out), so that the exported PNG says it too.
    """
    n_s, n_k = len(segments), len(narratives)
    fig = Figure(figsize=(max(6.0, 0.55 * n_k + 3.0), max(2.5, 0.32 * n_s + 1.8 + (0.3 if note else 0.0))))
    ax = fig.subplots()
    data = np.asarray(P, dtype=float).reshape(n_s, n_k) * 100.0
    im = ax.imshow(data, aspect="auto", cmap="Blues", vmin=0.0, vmax=max(1.0, float(np.nanmax(data, initial=0))))
    ax.set_xticks(range(n_k), labels=list(narratives), rotation=45, ha="right")
    ax.set_yticks(range(n_s), labels=list(segments))
    if n_s * n_k <= 600:
        hi = float(np.nanmax(data, initial=0)) * 0.6
        for i in range(n_s):
            for j in range(n_k):
                v = data[i, j]
                if v >= 0.5:
                    ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if v > hi else "black")
    runs: list[tuple[str | None, int, int]] = []
    for i, g in enumerate(groups or ()):
        if runs and runs[-1][0] == g:
            runs[-1] = (g, runs[-1][1], i + 1)
        else:
            runs.append((g, i, i + 1))
    if len(runs) > 1:
        side = ax.get_yaxis_transform()  # x in axes fraction, y in data (rows)
        for g, a, b in runs:
            if a:
                ax.axhline(a - 0.5, color="black", linewidth=1.2)
            ax.text(1.015, (a + b - 1) / 2, g or "?", transform=side, ha="left", va="center",
                    fontsize=8, fontweight="bold", clip_on=False)
    fig.colorbar(im, ax=ax, label="%", pad=0.09 if len(runs) > 1 else 0.05)
    if title:
        ax.set_title(title)
    _note(fig, note)
    return fig


def _note(fig: Figure, note: str) -> None:
    """Lay the figure out, with ``note`` (if any) as a grey line at its foot."""
    if note:
        fig.text(0.01, 0.005, note, fontsize=7, color="#444444", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03 if note else 0, 1, 1))


def cross_cutting_figure(rows: Sequence[dict[str, Any]], *, xlabel: str = "cross-cutting share",
                         title: str = "", note: str = "") -> Figure:
    """One point per segment (sorted, lowest on top) with its 95% interval as a horizontal bar."""
    rows = sorted(rows, key=lambda r: (r["value"], r["segment"]), reverse=True)
    fig = Figure(figsize=(7.0, max(2.5, 0.3 * len(rows) + 1.5)))
    ax = fig.subplots()
    y = np.arange(len(rows))
    v = np.array([r["value"] for r in rows], dtype=float)
    lo = np.array([(r.get("ci") or [r["value"]] * 2)[0] for r in rows], dtype=float)
    hi = np.array([(r.get("ci") or [r["value"]] * 2)[1] for r in rows], dtype=float)
    ax.errorbar(v, y, xerr=[np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)], fmt="o", color="#1f4e79",
                ecolor="#7fa7d0", capsize=3)
    ax.set_yticks(y, labels=[str(r["segment"]) for r in rows])
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    _note(fig, note)
    return fig


def funnel_figure(rows: Sequence[dict[str, Any]], *, stages: Sequence[str] = ("supply", "targeted", "delivered"),
                  title: str = "", note: str = "") -> Figure:
    """Grouped bars per segment: the count of ads at each stage of the funnel."""
    fig = Figure(figsize=(7.0, max(2.5, 0.45 * len(rows) + 1.5)))
    ax = fig.subplots()
    y = np.arange(len(rows))
    h = 0.8 / len(stages)
    colors = ("#c6dbef", "#6baed6", "#08519c")
    for i, st in enumerate(stages):
        ax.barh(y + i * h, [float(r.get(st) or 0) for r in rows], height=h, label=st,
                color=colors[i % len(colors)])
    ax.set_yticks(y + h * (len(stages) - 1) / 2, labels=[str(r["segment"]) for r in rows])
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    _note(fig, note)
    return fig


def to_svg(fig: Figure) -> bytes:
    """SVG bytes of a figure, without date metadata (same figure → same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def to_png(fig: Figure, *, dpi: int = 150) -> bytes:
    """PNG bytes of a figure (no software/date metadata)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...``: an image embedded in the HTML, loaded from nowhere."""
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
