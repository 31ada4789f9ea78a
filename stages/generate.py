"""generate stage: more examples for one skill, in the example-file format, plus a report.

    python -m stages.generate SKILL EXAMPLES_FILE OUT_DIR PROMPTS_DIR CACHE_DIR

writes OUT_DIR/SKILL.txt and OUT_DIR/SKILL.report.json. PROMPTS_DIR holds generate_system.txt, generate_user.txt
(openai backend) and augment.yaml (offline backend); CACHE_DIR keeps the openai responses (never deleted).
"""

import sys

from skillcall.examples import ExampleError, read_example_file
from skillcall.generate import GenerateParams, generate, write_generated
from skillcall.params import load_params


def main(skill: str, examples_file: str, out_dir: str, prompts_dir: str, cache_dir: str) -> None:
    params = load_params("generate", GenerateParams)
    hand = read_example_file(examples_file)
    if hand.skill.name != skill:
        raise ExampleError(hand.skill.source, f"expected the signature of {skill!r}, got {hand.skill.signature}")
    pairs, report = generate(hand, params, prompts_dir, cache_dir)
    examples, _ = write_generated(out_dir, hand.skill, pairs, report)
    print(f"generate@{skill}: {params.backend}, requested {report['requested']}, wrote {len(pairs)} to {examples}")


if __name__ == "__main__":
    main(*sys.argv[1:])
