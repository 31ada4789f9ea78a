from dvc_repo import copy_repo, ran_stages, run, set_params

from skillcall.dataset import SPLITS, read_rows, skeleton


def test_dvc_repro_collect_is_leak_free_then_nothing_to_do(tmp_path):
    """The real examples and augmenter through the real `dvc repro`: no origin in two splits, no val/test
    skeleton (values, numbers, fillers masked) in train, val/test only hand examples; a second repro is a no-op.
    The augmenter is switched on here whatever the default (``generate.per_skill: 0`` trains on hand examples)."""
    repo = copy_repo(tmp_path)
    set_params(repo, {"generate": {"per_skill": 40, "counts": {"other": 80}}})
    first = run(["dvc", "repro", "collect"], repo)
    assert "collect" in ran_stages(first)
    rows = {name: read_rows(repo / "data" / "dataset" / f"{name}.jsonl") for name in SPLITS}
    assert all(rows[name] for name in SPLITS)
    assert sum(r.source == "augmented" for r in rows["train"]) > 300  # up to 40 per skill, 80 other()
    origins = {name: {r.origin for r in rows[name]} for name in SPLITS}
    assert all(r.origin for name in SPLITS for r in rows[name])
    assert not origins["train"] & origins["val"] and not origins["train"] & origins["test"]
    assert not origins["val"] & origins["test"]
    train_skeletons = {skeleton(r.user, r.answer) for r in rows["train"]}
    for name in ("val", "test"):
        assert {r.source for r in rows[name]} == {"hand"}
        leaks = [r.user for r in rows[name] if skeleton(r.user, r.answer) in train_skeletons]
        assert leaks == [], f"{name} rows whose skeleton is in train: {leaks}"
    assert (repo / "data" / "dataset" / "stats.json").exists()
    second = run(["dvc", "repro", "collect"], repo)
    assert ran_stages(second) == []
    assert "Data and pipelines are up to date" in second
