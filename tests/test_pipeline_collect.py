from dvc_repo import copy_repo, ran_stages, run


def test_dvc_repro_collect_then_nothing_to_do(tmp_path):
    repo = copy_repo(tmp_path)
    first = run(["dvc", "repro", "collect"], repo)
    assert "collect" in ran_stages(first)
    for split in ("train", "val", "test"):
        assert (repo / "data" / "dataset" / f"{split}.jsonl").stat().st_size > 0
    assert (repo / "data" / "dataset" / "stats.json").exists()
    second = run(["dvc", "repro", "collect"], repo)
    assert ran_stages(second) == []
    assert "Data and pipelines are up to date" in second
