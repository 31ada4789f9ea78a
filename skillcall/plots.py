"""Static PNG plots that render offline (``dvc plots show`` embeds them as images; W&B gets them as images).

Pure data helpers, then one figure builder per picture (matplotlib's object API: no pyplot, no display):

    >>> row_normalised({"timer": {"timer": 3, "invalid": 1}, "other": {"other": 2}}, ["other", "timer", "invalid"])
    [[1.0, 0.0, 0.0], [0.0, 0.75, 0.25]]
    >>> per_skill_records({"baseline": {"per_skill": {"timer": {"accuracy": 0.0, "count": 2}}},
    ...                    "test": {"per_skill": {"timer": {"accuracy": 0.5, "count": 2}}}})
    [{'skill': 'timer', 'accuracy': 0.5, 'count': 2, 'baseline': 0.0}]
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

INVALID = "invalid"  # the confusion column of generations that are not a valid call (skillcall.evaluate.INVALID)
LOSS_FILE = "loss.png"  # under the finetune stage's DVCLive folder: plots/images/loss.png
PER_SKILL_PNG = "per_skill.png"  # under eval/plots/
CONFUSION_PNG = "confusion.png"  # under eval/plots/
PER_SKILL_DATA = "per_skill.json"  # eval/per_skill.json: the per-skill accuracy records (a DVC bar plot, git-tracked)
LABELS = {"test": "fine-tuned, test", "holdout": "fine-tuned, holdout", "baseline": "base model, test"}
DPI = 100


def read_tsv(path: str | Path) -> list[tuple[int, float]]:
    """``[(step, value)]`` of a DVCLive metric file (``step<TAB>name`` header); [] when it does not exist."""
    if not Path(path).exists():
        return []
    with open(path, newline="") as f:
        return [
            (int(r["step"]), float(r[next(k for k in r if k not in ("step", "timestamp"))]))
            for r in csv.DictReader(f, delimiter="\t")
        ]


def loss_series(live_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``{"train": [(step, loss)], "val": [...]}`` from a DVCLive folder written by the finetune stage."""
    metrics = Path(live_dir) / "plots" / "metrics"
    return {name: read_tsv(metrics / name / "loss.tsv") for name in ("train", "val")}


def loss_figure(series: dict[str, list[tuple[int, float]]]) -> Figure:
    """Training and validation loss per optimizer step (log scale: the loss spans orders of magnitude)."""
    fig = Figure(figsize=(6, 3.6), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    for name, style in (("train", "-"), ("val", "o-")):
        if points := series.get(name):
            ax.plot(*zip(*points, strict=True), style, label=f"{name} loss", markersize=4)
    ax.set(xlabel="optimizer step", ylabel="loss (log)", title="fine-tuning loss")
    if any(v > 0 for points in series.values() for _, v in points):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def per_skill_records(details: dict, headline: str = "test") -> list[dict]:
    """One record per skill of the ``headline`` set: its accuracy and count, plus the accuracy of every other set
    with ``per_skill`` (``holdout``, ``baseline`` ...) under the set's name (None if the set lacks the skill)."""
    sets = {name: m["per_skill"] for name, m in details.items() if isinstance(m, dict) and "per_skill" in m}
    others = [name for name in sets if name != headline]
    return [
        {"skill": skill, **sets[headline][skill]} | {o: sets[o].get(skill, {}).get("accuracy") for o in others}
        for skill in sorted(sets[headline])
    ]


def bars(ax: Any, groups: list[str], series: dict[str, list[float | None]]) -> None:
    """Horizontal grouped bars: one group per entry of ``groups``, one bar per series (None: no bar)."""
    height = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        ys = [g + (len(series) - 1 - i) * height - 0.4 + height / 2 for g in range(len(groups))]
        shown = [(y, v) for y, v in zip(ys, values, strict=True) if v is not None]
        drawn = ax.barh([y for y, _ in shown], [v for _, v in shown], height=height, label=label)
        ax.bar_label(drawn, fmt="%.2f", fontsize=7, padding=2)
    ax.set_yticks(range(len(groups)), groups)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.1)
    ax.grid(axis="x", alpha=0.3)
    ax.figure.legend(loc="outside lower center", ncols=min(len(series), 3), fontsize="small")


def per_skill_figure(details: dict, headline: str = "test") -> Figure:
    """Per-skill AST accuracy: fine-tuned on test and holdout vs the base model on test."""
    records = per_skill_records(details, headline)
    others = [k for k in records[0] if k not in ("skill", "accuracy", "count")]
    series = {LABELS.get(headline, headline): [r["accuracy"] for r in records]}
    series |= {LABELS.get(n, n): [r[n] for r in records] for n in others}
    fig = Figure(figsize=(6.5, 0.45 * len(records) + 1.4), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    bars(ax, [f"{r['skill']} ({r['count']})" for r in records], series)
    ax.set(xlabel="AST accuracy", title="per skill (test count): fine-tuned vs base")
    return fig


def row_normalised(counts: dict[str, dict[str, int]], columns: list[str]) -> list[list[float]]:
    """Rows of ``counts`` (gold skill -> predicted -> count) as shares of the row, in ``columns`` order."""
    out = []
    for gold in sorted(counts):
        total = sum(counts[gold].values())
        out.append([counts[gold].get(c, 0) / total for c in columns])
    return out


def confusion_figure(counts: dict[str, dict[str, int]], title: str = "test") -> Figure:
    """Row-normalised confusion matrix: correct share in green on the diagonal, every error in red, scaled to
    the largest error so that a single wrong utterance is still visible; cells show counts."""
    import numpy as np

    rows = sorted(counts)
    predicted = {p for r in counts.values() for p in r}
    columns = rows + sorted(predicted - set(rows) - {INVALID}) + [INVALID]
    shares = np.array(row_normalised(counts, columns))
    diagonal = np.zeros_like(shares, dtype=bool)
    for i, gold in enumerate(rows):
        diagonal[i, columns.index(gold)] = True
    errors = np.where(diagonal | (shares == 0), np.nan, shares)
    worst = np.nanmax(errors) if not np.isnan(errors).all() else 1.0
    fig = Figure(figsize=(0.55 * len(columns) + 2.2, 0.45 * len(rows) + 1.8), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(np.where(diagonal, shares, np.nan), cmap="Greens", vmin=0, vmax=1)
    ax.imshow(errors, cmap="Reds", vmin=-0.5 * worst, vmax=worst)  # the smallest error is mid-red, not white
    for i, gold in enumerate(rows):
        for j, column in enumerate(columns):
            if n := counts[gold].get(column, 0):
                dark = shares[i, j] > (0.6 if diagonal[i, j] else 0.6 * worst)
                ax.text(j, i, str(n), ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set(xlabel="predicted", ylabel="gold", title=f"{title}: share of each gold skill (counts shown; red = errors)")
    return fig


def comparison_figure(per_skill: dict[str, dict[str, float]]) -> Figure:
    """Per-skill accuracy of several experiments side by side: ``{experiment: {skill: accuracy}}``."""
    skills = sorted({s for accuracies in per_skill.values() for s in accuracies})
    series = {exp: [acc.get(s) for s in skills] for exp, acc in per_skill.items()}
    fig = Figure(figsize=(6.5, 0.3 * len(skills) * max(len(series), 2) + 1.4), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    bars(ax, skills, series)
    ax.set(xlabel="AST accuracy (test)", title="per-skill accuracy by experiment")
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (parent folders created); returns the path."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return Path(path)


def write_loss_plot(live_dir: str | Path) -> Path:
    """``<live_dir>/plots/images/loss.png`` from the DVCLive loss curves in ``live_dir``; returns its path."""
    return save(loss_figure(loss_series(live_dir)), Path(live_dir) / "plots" / "images" / LOSS_FILE)


def write_eval_plots(out_dir: str | Path, details: dict, headline: str = "test") -> list[Path]:
    """``<out>/per_skill.json`` (DVC bar plot data) and ``<out>/plots/{per_skill,confusion}.png`` of the ``headline``
    set (the others' per-skill accuracy beside it); returns the PNGs."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / PER_SKILL_DATA).write_text(json.dumps(per_skill_records(details, headline), indent=1) + "\n")
    return [
        save(per_skill_figure(details, headline), out / "plots" / PER_SKILL_PNG),
        save(confusion_figure(details[headline]["confusion"], headline), out / "plots" / CONFUSION_PNG),
    ]


def log_images(run: Any, paths: list[Path], prefix: str) -> None:
    """Send PNGs to W&B as images under ``<prefix>/<file stem>``."""
    import wandb

    run.log({f"{prefix}/{Path(p).stem}": wandb.Image(str(p)) for p in paths})
