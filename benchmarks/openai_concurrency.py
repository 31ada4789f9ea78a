"""The openai backend's bounded concurrency against a local fake endpoint with a fixed latency per request.

    python benchmarks/openai_concurrency.py [--requests 48] [--latency 0.3] [--concurrency 1 8 16]

The same requests (one skill, ``examples/notes.txt``, fresh cache each time) at each concurrency, against
``tests/fake_openai.py`` on 127.0.0.1 answering every request after ``--latency`` seconds. Prints wall time,
requests/s and the speedup over the first concurrency listed, and checks that every level sent each request exactly
once and wrote the same pairs in the same order.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_openai import FakeOpenAI  # noqa: E402

from skillcall.examples import read_example_file  # noqa: E402
from skillcall.generate import GenerateParams, OpenAIParams, generate_openai  # noqa: E402


def measure(server: FakeOpenAI, requests: int, concurrency: int) -> tuple[float, list]:
    """Seconds for ``requests`` uncached requests at ``concurrency``, and the pairs they gave."""
    hand = read_example_file(ROOT / "examples" / "notes.txt")
    p = OpenAIParams(server.base_url, "fake", 4, 2, 1.0, 8, 0, 0.0, 60.0, concurrency)
    params = GenerateParams(skills=["notes"], backend="openai", seed=0, per_skill=requests * 8, openai=p)
    server.requests.clear()
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        pairs, report = generate_openai(hand, requests * 8, params, ROOT / "prompts", Path(cache))
        seconds = time.perf_counter() - start
    sent = Counter(r["body"]["seed"] for r in server.requests)
    assert report["api_responses"] == requests and sorted(sent) == list(range(requests)), "a request was lost"
    assert set(sent.values()) == {1}, f"a request was sent twice at concurrency {concurrency}"
    return seconds, pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=48)
    ap.add_argument("--latency", type=float, default=0.3, help="seconds the fake endpoint takes per request")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16])
    args = ap.parse_args()
    os.environ["OPENAI_API_KEY"] = "sk-fake"
    os.environ["NO_PROXY"] = "127.0.0.1"
    server = FakeOpenAI(latency_s=args.latency)
    try:
        measure(server, 1, 1)  # warm-up: imports the openai SDK (seconds), not part of any timing
        print(f"{args.requests} requests, fake endpoint latency {args.latency * 1000:.0f} ms\n")
        print("| concurrency | wall s | requests/s | speedup | ideal |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        base, first = None, None
        for level in args.concurrency:
            seconds, pairs = measure(server, args.requests, level)
            base, first = base or seconds, first or pairs
            assert pairs == first, "another concurrency gave other pairs"
            ideal = min(level, args.requests) / min(args.concurrency[0], args.requests)
            print(f"| {level} | {seconds:.2f} | {args.requests / seconds:.1f} | {base / seconds:.1f}x | {ideal:.0f}x |")
        print(f"\nsame {len(first)} pairs in the same order at every concurrency; each request sent once")
        print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}")
    finally:
        server.close()


if __name__ == "__main__":
    main()
