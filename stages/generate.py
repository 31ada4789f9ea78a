"""generate stage: more examples for one skill, in the example-file format, plus a report.

    python -m stages.generate SKILL EXAMPLES_FILE OUT_DIR PROMPTS_DIR CACHE_DIR

writes OUT_DIR/SKILL.txt, OUT_DIR/SKILL.report.json and OUT_DIR/SKILL.origins.jsonl. Only the hand examples of the
train split (decided by the ``collect:`` params, see skillcall.dataset) are built on. PROMPTS_DIR holds generate_system.txt, generate_user.txt
(openai backend) and augment.yaml (offline backend); CACHE_DIR keeps the openai responses (never deleted).

Expected failures (a bad example file, bad params, an endpoint that refuses or stays down) print one paragraph on
stderr, no traceback, and exit 1. SIGTERM and SIGINT stop the stage at once (exit 143 / 130): the responses
received so far stay cached, so a rerun continues where it stopped. Under ``dvc repro`` (``DVC_STAGE`` set), on
Linux, the stage also stops when dvc does: dvc does not pass a SIGTERM on to its stage. dvc.yaml starts it with
``exec`` so that dvc, not a shell left in between (dash does not exec a ``-c`` command), is the parent watched.
"""

import argparse
import ctypes
import os
import signal
import sys

from skillcall.augment import AugmentError
from skillcall.dataset import CollectParams, assign_splits, drop_held_out, train_examples
from skillcall.examples import ExampleError, read_example_file
from skillcall.generate import GenerateError, GenerateParams, generate, write_generated
from skillcall.params import ParamsError, load_params

EXPECTED = (GenerateError, ExampleError, ParamsError, AugmentError, OSError)


class Stopped(Exception):
    """A termination signal arrived."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum: int, frame) -> None:
    raise Stopped(signum)


def stop_with_parent() -> None:
    """Under dvc on Linux: have the kernel send SIGTERM when the parent (dvc) exits (``PR_SET_PDEATHSIG``)."""
    if "DVC_STAGE" not in os.environ or not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it exited before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("skill", "examples_file", "out_dir", "prompts_dir", "cache_dir"):
        ap.add_argument(name)
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    params, split = load_params("generate", GenerateParams), load_params("collect", CollectParams)
    hand = read_example_file(args.examples_file)
    if hand.skill.name != args.skill:
        raise ExampleError(hand.skill.source, f"expected the signature of {args.skill!r}, got {hand.skill.signature}")
    assignment = assign_splits(hand.pairs, split.seed, split.val_fraction, split.test_fraction)
    pairs, report = generate(train_examples(hand, assignment), params, args.prompts_dir, args.cache_dir)
    held_out = [p for p in hand.pairs if assignment[p.file] != "train"]
    pairs, report["dropped_held_out_skeleton"] = drop_held_out(pairs, held_out)
    report["written"] = len(pairs)
    examples, _ = write_generated(args.out_dir, hand.skill, pairs, report)
    warned = f", {len(report['warnings'])} warning(s) (see above and the report)" if report["warnings"] else ""
    print(
        f"generate@{args.skill}: {params.backend}, requested {report['requested']}, wrote {len(pairs)} to {examples}{warned}"
    )


def main(argv: list[str] | None = None, watch_parent: bool = False) -> int:
    """Run the stage; returns the exit status (errors and signals reported on stderr, without a traceback).
    ``watch_parent``: see :func:`stop_with_parent` (the command line sets it)."""
    args = parse_args(argv)
    try:
        if watch_parent:
            stop_with_parent()
        run(args)
    except EXPECTED as e:
        print(f"generate@{args.skill}: error: {e}", file=sys.stderr)
        return 1
    except (Stopped, KeyboardInterrupt) as e:
        signum = e.signum if isinstance(e, Stopped) else signal.SIGINT
        print(
            f"generate@{args.skill}: stopped by {signal.Signals(signum).name}; nothing was written to {args.out_dir}. "
            f"Responses received so far are cached in {args.cache_dir}: a rerun continues where this one stopped.",
            file=sys.stderr,
        )
        return 128 + signum
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    sys.exit(main(watch_parent=True))
