"""Compare DVC experiments in a table that fits a terminal (or a PR, with ``--md``).

    python -m skillcall.compare                  # every experiment of HEAD: changed params, headline metrics,
                                                 # then per-skill test accuracy as deltas against HEAD's run
    python -m skillcall.compare --md --reference exp-1a2b3   # markdown, deltas against another experiment
    python -m skillcall.compare --png compare.png            # also the per-skill accuracies as a bar chart

Reads ``dvc exp show --json`` (or a saved copy: ``--exp-json FILE``) and each experiment's ``eval/per_skill.json``
(git-tracked by the eval stage, so ``git show <rev>:eval/per_skill.json`` finds it for every experiment).

    >>> exps = [Experiment("main", "a1", {"finetune.lora.r": 16, "finetune.seed": 0}, {"ast_accuracy": 0.9}),
    ...         Experiment("exp-x", "b2", {"finetune.lora.r": 4, "finetune.seed": 0}, {"ast_accuracy": 0.85})]
    >>> print(render(*summary_table(exps)))
    experiment  lora.r    ast
    main            16  0.900
    exp-x            4  0.850
    >>> print(render(*skill_table({"main": {"timer": 1.0}, "exp-x": {"timer": 0.75}}, "main"), md=True))
    | skill | main | exp-x |
    | :-- | --: | --: |
    | timer | 1.000 | -0.250 |
"""

from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PER_SKILL_FILE = "eval/per_skill.json"  # records {"skill", "accuracy", ...} written by the eval stage
WORKSPACE = "workspace"
# (column header, flat metric key): the headline numbers, in this order, when an experiment has them
METRICS = (
    ("ast", "ast_accuracy"),
    ("exact", "exact_match"),
    ("valid", "valid_rate"),
    ("other_f1", "other_f1"),
    ("holdout", "holdout_ast_accuracy"),
    ("base", "baseline_ast_accuracy"),
    ("constr", "constrained_ast_accuracy"),
    ("unconstr", "unconstrained_ast_accuracy"),
    ("p50_ms", "latency_ms_p50"),
    ("p95_ms", "latency_ms_p95"),
    ("train_loss", "train_loss"),
    ("val_loss", "val_loss"),
    ("train_s", "train_seconds"),
)
WHOLE = ("latency_ms_p50", "latency_ms_p95", "train_seconds")  # shown without decimals


@dataclass
class Experiment:
    name: str  # experiment name, the branch (or short sha) of a commit, or "workspace"
    rev: str  # git sha, or "workspace"
    params: dict[str, Any]  # flat: {"finetune.lora.r": 16}
    metrics: dict[str, Any]  # flat over every metrics file: {"ast_accuracy": 0.95, "holdout_ast_accuracy": ...}


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": 2}`` -> ``{"a.b": 1, "c": 2}`` (lists stay values).

    >>> flatten({"finetune": {"lora": {"r": 16}, "seed": 0}})
    {'finetune.lora.r': 16, 'finetune.seed': 0}
    """
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _experiment(entry: dict) -> Experiment | None:
    """An entry of ``dvc exp show --json`` (a commit, an experiment or the workspace); None if it failed."""
    name = entry.get("name") or (WORKSPACE if entry["rev"] == WORKSPACE else entry["rev"][:7])
    data = entry.get("data") or {}
    if entry.get("error") or not data:
        return None
    params = {k: v for f in (data.get("params") or {}).values() for k, v in flatten(f.get("data") or {}).items()}
    metrics = {k: v for f in (data.get("metrics") or {}).values() for k, v in flatten(f.get("data") or {}).items()}
    return Experiment(name, entry["rev"], params, metrics)


def experiments(exp_show: list[dict], workspace: bool = False) -> list[Experiment]:
    """The commits and experiments of ``dvc exp show --json``, each commit followed by its experiments; the
    workspace only with ``workspace`` (after ``dvc exp run`` it repeats the last experiment)."""
    out = []
    for commit in exp_show:
        if commit["rev"] == WORKSPACE and not workspace:
            continue
        out.append(_experiment(commit))
        for exp in commit.get("experiments") or []:
            out += [_experiment(rev) for rev in exp.get("revs", [])]
    return [e for e in out if e is not None]


def changed_params(exps: list[Experiment]) -> list[str]:
    """Flat param keys whose value is not the same in every experiment, in params.yaml order."""
    keys = list(dict.fromkeys(k for e in exps for k in e.params))
    return [k for k in keys if len({json.dumps(e.params.get(k)) for e in exps}) > 1]


def fmt(value: Any, key: str = "") -> str:
    """``0.95123`` -> ``"0.951"``; latencies and seconds without decimals; None -> ``"-"``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if key in WHOLE else f"{value:.3f}"
    return str(value)


def summary_table(exps: list[Experiment]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): experiment name, the changed params (without their section), the headline metrics."""
    params = changed_params(exps)
    metrics = [(h, k) for h, k in METRICS if any(k in e.metrics for e in exps)]
    header = ["experiment", *(k.split(".", 1)[-1] for k in params), *(h for h, _ in metrics)]
    rows = [
        [e.name, *(fmt(e.params.get(k)) for k in params), *(fmt(e.metrics.get(k), k) for _, k in metrics)] for e in exps
    ]
    return header, rows


def skill_table(per_skill: dict[str, dict[str, float]], reference: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows): per skill, the ``reference`` experiment's accuracy, then every other one's difference."""
    ref = per_skill.get(reference, {})
    skills = sorted({s for accuracies in per_skill.values() for s in accuracies})
    others = [name for name in per_skill if name != reference]

    def delta(name: str, skill: str) -> str:
        value = per_skill[name].get(skill)
        if value is None or skill not in ref:
            return fmt(value)
        return f"{value - ref[skill]:+.3f}" if value != ref[skill] else "0"

    rows = [[skill, fmt(ref.get(skill)), *(delta(n, skill) for n in others)] for skill in skills]
    return ["skill", reference, *others], rows


def render(header: list[str], rows: list[list[str]], md: bool = False) -> str:
    """Aligned columns (the first left-aligned, the rest right-aligned), or a markdown table."""
    if md:
        lines = [header, [":--", *["--:"] * (len(header) - 1)], *rows]
        return "\n".join(f"| {' | '.join(line)} |" for line in lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in [header, *rows]
    )


def per_skill_accuracy(records: list[dict]) -> dict[str, float]:
    """``eval/per_skill.json`` records -> ``{skill: test accuracy}``.

    >>> per_skill_accuracy([{"skill": "timer", "accuracy": 0.5, "count": 2, "baseline": 0.0}])
    {'timer': 0.5}
    """
    return {r["skill"]: r["accuracy"] for r in records}


def read_per_skill(rev: str, repo: str | Path = ".") -> dict[str, float]:
    """``{skill: accuracy}`` of ``eval/per_skill.json`` at a git rev (or in the workspace); {} if it has none."""
    if rev == WORKSPACE:
        path = Path(repo) / PER_SKILL_FILE
        return per_skill_accuracy(json.loads(path.read_text())) if path.exists() else {}
    proc = subprocess.run(["git", "show", f"{rev}:{PER_SKILL_FILE}"], cwd=repo, capture_output=True, text=True)
    return per_skill_accuracy(json.loads(proc.stdout)) if proc.returncode == 0 else {}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--md", action="store_true", help="markdown tables (for a PR)")
    ap.add_argument("--reference", help="experiment the per-skill deltas are taken against (default: the commit)")
    ap.add_argument("--workspace", action="store_true", help="also the workspace row")
    ap.add_argument("--exp-json", help="a saved `dvc exp show --json` instead of running it")
    ap.add_argument("--png", help="also write the per-skill accuracies of every experiment as a bar chart here")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.exp_json:
        exp_show = json.loads(Path(args.exp_json).read_text())
    else:
        exp_show = json.loads(subprocess.run(["dvc", "exp", "show", "--json"], capture_output=True, check=True).stdout)
    exps = experiments(exp_show, args.workspace)
    if not exps:
        raise SystemExit("compare: no experiment to compare (dvc exp show lists none)")
    per_skill = {e.name: read_per_skill(e.rev) for e in exps}
    reference = args.reference or next((e.name for e in exps if e.rev != WORKSPACE), exps[0].name)
    print(render(*summary_table(exps), md=args.md))
    if any(per_skill.values()):
        print(f"\nper-skill test accuracy: {reference}, then each experiment's difference\n")
        print(render(*skill_table(per_skill, reference), md=args.md))
    else:
        print(f"\n(no per-skill accuracy: no experiment has {PER_SKILL_FILE} in git)")
    if args.png:
        from skillcall.plots import comparison_figure, save

        save(comparison_figure({k: v for k, v in per_skill.items() if v}), args.png)


if __name__ == "__main__":
    main()
