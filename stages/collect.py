"""collect stage: examples + generated - rejected -> validated, deduplicated, stratified splits.

python -m stages.collect EXAMPLES_DIR GENERATED_DIR REJECTED_FILE OUT_DIR
"""

import json
import sys
from pathlib import Path

from skillcall.dataset import CollectParams, collect, write_jsonl
from skillcall.examples import load_skills
from skillcall.params import load_params


def main(examples_dir: str, generated_dir: str, rejected: str, out_dir: str) -> None:
    params = load_params("collect", CollectParams)
    skills = load_skills(examples_dir)
    splits, stats = collect(examples_dir, generated_dir, rejected, skills, params)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        write_jsonl(out / f"{name}.jsonl", rows)
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    print(f"collect: read {stats['read']}, kept {stats['kept']}, splits {stats['splits']}")


if __name__ == "__main__":
    main(*sys.argv[1:])
