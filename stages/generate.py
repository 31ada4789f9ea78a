"""generate stage: more examples for one skill, in the example-file format, plus a report.

    python -m stages.generate SKILL EXAMPLES_FILE OUT_DIR PROMPTS_DIR CACHE_DIR

writes OUT_DIR/SKILL.txt, OUT_DIR/SKILL.report.json and OUT_DIR/SKILL.origins.jsonl. Only the hand examples of the
train split (decided by the ``collect:`` params, see skillcall.dataset) are built on. PROMPTS_DIR holds generate_system.txt, generate_user.txt
(openai backend) and augment.yaml (offline backend); CACHE_DIR keeps the openai responses (never deleted).
"""

import sys

from skillcall.dataset import CollectParams, assign_splits, drop_held_out, train_examples
from skillcall.examples import ExampleError, read_example_file
from skillcall.generate import GenerateParams, generate, write_generated
from skillcall.params import load_params


def main(skill: str, examples_file: str, out_dir: str, prompts_dir: str, cache_dir: str) -> None:
    params, split = load_params("generate", GenerateParams), load_params("collect", CollectParams)
    hand = read_example_file(examples_file)
    if hand.skill.name != skill:
        raise ExampleError(hand.skill.source, f"expected the signature of {skill!r}, got {hand.skill.signature}")
    assignment = assign_splits(hand.pairs, split.seed, split.val_fraction, split.test_fraction)
    pairs, report = generate(train_examples(hand, assignment), params, prompts_dir, cache_dir)
    held_out = [p for p in hand.pairs if assignment[p.file] != "train"]
    pairs, report["dropped_held_out_skeleton"] = drop_held_out(pairs, held_out)
    report["written"] = len(pairs)
    examples, _ = write_generated(out_dir, hand.skill, pairs, report)
    print(f"generate@{skill}: {params.backend}, requested {report['requested']}, wrote {len(pairs)} to {examples}")


if __name__ == "__main__":
    main(*sys.argv[1:])
