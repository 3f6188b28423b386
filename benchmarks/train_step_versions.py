"""Two versions of batchfit side by side: `train_step.py` run alternately against each.

Each round runs `benchmarks/train_step.py` once with the other version's source
first on `PYTHONPATH`, then once with this checkout's, so host noise hits both
alike; the script prints every round's ratios to the hand loop and their medians.

    git worktree add /tmp/old 2da4d71          # the version to compare against
    python benchmarks/train_step_versions.py --old-src /tmp/old/src --runs 4
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROWS = ("batchfit train_on_batch", "batchfit fit", "fit + bar/CSV/backup")


def one_run(src: str, rounds: int, workload: str) -> dict[str, float]:
    """The ratio to the hand loop of each contender in one run of train_step.py."""
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(HERE / "train_step.py"), "--rounds", str(rounds)]
    cmd += ["--workload", workload, "--threads", "1"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    ratios = {}
    for name in ("hand torch loop", *ROWS):
        match = re.search(rf"^{re.escape(name)}\s+([\d.]+)\s+([\d.]+)$", out, re.M)
        if match is None:
            raise RuntimeError(f"no line for {name!r} in:\n{out}")
        ratios[name] = float(match.group(2))
        if name == "hand torch loop":
            ratios["hand us/step"] = float(match.group(1))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--old-src", required=True, help="the other version's src/ folder")
    parser.add_argument("--new-src", default=str(HERE.parent / "src"))
    parser.add_argument("--runs", type=int, default=4, help="alternations old/new")
    parser.add_argument("--rounds", type=int, default=7, help="rounds inside each run")
    parser.add_argument("--workload", default="seed")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for run in range(args.runs):
        for label, src in (("old", args.old_src), ("new", args.new_src)):
            ratios = one_run(src, args.rounds, args.workload)
            results[label].append(ratios)
            cells = "  ".join(f"{ratios[r]:.3f}" for r in ROWS)
            print(f"run {run + 1} {label}: hand {ratios['hand us/step']:7.1f} us/step  {cells}")
    print(f"\nmedians over {args.runs} runs ({', '.join(ROWS)}):")
    for label, runs in results.items():
        cells = "  ".join(f"{statistics.median(r[name] for r in runs):.3f}" for name in ROWS)
        print(f"  {label}: {cells}")


if __name__ == "__main__":
    main()
