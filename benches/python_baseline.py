#!/usr/bin/env python3
"""Bare `json.loads` of the 100k mixed-corpus lines: the machine baseline that the
reference figures in shared/bench/README.md are relative to (docs/performance.md).

    python3 benches/python_baseline.py [CORPUS_DIR]

With CORPUS_DIR, reads CORPUS_DIR/mixed_100k.ndjson (written by gen_corpus.py);
otherwise generates the corpus in memory with ../shared/bench/gen_corpus.py, found
relative to this repository. Stdlib only.
"""

import json
import os
import statistics
import sys
import time

RUNS = 7


def load_lines() -> list[str]:
    if len(sys.argv) > 1:
        with open(os.path.join(sys.argv[1], "mixed_100k.ndjson"), "rb") as f:
            return f.read().decode("utf-8").splitlines()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(repo, "..", "shared", "bench"))
    import gen_corpus

    return gen_corpus.gen_mixed()


def main() -> None:
    lines = load_lines()
    assert len(lines) == 100_000
    nbytes = sum(len(line.encode("utf-8")) + 1 for line in lines)
    times = []
    for _ in range(RUNS):
        loads = json.loads
        start = time.perf_counter()
        for line in lines:
            loads(line)
        times.append(time.perf_counter() - start)
    best, median = min(times), statistics.median(times)
    print(f"python {sys.version.split()[0]}, json.loads of {len(lines):,} lines ({nbytes:,} bytes), {RUNS} runs")
    print(f"best   {best * 1e3:8.1f} ms  {len(lines) / best:10,.0f} frames/s  {nbytes / best / 1e6:6.1f} MB/s")
    print(f"median {median * 1e3:8.1f} ms  {len(lines) / median:10,.0f} frames/s  {nbytes / median / 1e6:6.1f} MB/s")


if __name__ == "__main__":
    main()
