"""Static plots: the data they show (pure functions) and PNG files that are real, non-empty images."""

from __future__ import annotations

import json

import pytest

from skillcall import plots

PER_SKILL = {  # the eval stage's details.json: the baseline runs first, "test" is the headline set
    "baseline": {"per_skill": {"timer": {"accuracy": 0.0, "count": 4}, "other": {"accuracy": 0.0, "count": 2}}},
    "test": {
        "per_skill": {"timer": {"accuracy": 0.5, "count": 4}, "other": {"accuracy": 1.0, "count": 2}},
        "confusion": {"timer": {"timer": 2, "other": 1, "invalid": 1}, "other": {"other": 2}},
    },
    "holdout": {"per_skill": {"timer": {"accuracy": 0.25, "count": 4}}},
    "evaluated": {"model": "m", "adapter": "a"},
}


def is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_per_skill_records_hold_every_set_by_skill():
    assert plots.per_skill_records(PER_SKILL) == [
        {"skill": "other", "accuracy": 1.0, "count": 2, "baseline": 0.0, "holdout": None},
        {"skill": "timer", "accuracy": 0.5, "count": 4, "baseline": 0.0, "holdout": 0.25},
    ]


def test_confusion_rows_are_shares_of_each_gold_skill():
    counts = PER_SKILL["test"]["confusion"]
    shares = plots.row_normalised(counts, ["other", "timer", "invalid"])
    assert shares == [[1.0, 0.0, 0.0], [0.25, 0.5, 0.25]]
    assert all(sum(row) == pytest.approx(1) for row in shares)


def test_read_tsv_of_dvclive(tmp_path):
    tsv = tmp_path / "plots" / "metrics" / "val" / "loss.tsv"
    tsv.parent.mkdir(parents=True)
    tsv.write_text("step\tloss\n5\t1.5\n10\t0.25\n")
    assert plots.loss_series(tmp_path) == {"train": [], "val": [(5, 1.5), (10, 0.25)]}


def test_eval_plots_write_pngs_and_the_per_skill_data(tmp_path):
    pngs = plots.write_eval_plots(tmp_path, PER_SKILL)
    assert [p.relative_to(tmp_path).as_posix() for p in pngs] == ["plots/per_skill.png", "plots/confusion.png"]
    assert all(map(is_png, pngs))
    assert json.loads((tmp_path / "per_skill.json").read_text()) == plots.per_skill_records(PER_SKILL)


def test_loss_and_comparison_pngs(tmp_path):
    for name in ("train", "val"):
        tsv = tmp_path / "live" / "plots" / "metrics" / name / "loss.tsv"
        tsv.parent.mkdir(parents=True)
        tsv.write_text("step\tloss\n" + "".join(f"{s}\t{2.0 / s}\n" for s in range(1, 9)))
    assert is_png(plots.write_loss_plot(tmp_path / "live"))
    figure = plots.comparison_figure({"main": {"timer": 0.5, "other": 1.0}, "exp-a": {"timer": 0.75}})
    assert is_png(plots.save(figure, tmp_path / "compare.png"))


def test_the_invalid_column_is_the_evaluators():
    from skillcall.evaluate import INVALID

    assert plots.INVALID == INVALID  # plots.py does not import the evaluator (torch) just for this name
