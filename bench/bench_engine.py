#!/usr/bin/env python3
"""Benchmark: bouncemgr's engine vs Sisimai 4.25 (Debian libsisimai-perl) vs flufl.bounce.

    .venv/bin/python bench/bench_engine.py [CORPUS] [--passes 10] [--repeat 3]

Each engine runs as ONE process that reads the corpus's .eml paths on stdin (the list fed
``--passes`` times, so the start-up of perl/python weighs little) and prints JSON lines,
exactly as shared/tools/score_engine.py drives engines. Wall time is from process start to
exit, the best of ``--repeat`` runs; "net" subtracts the engine's time on empty input. The
ratio column compares with Sisimai measured in the same run. A last line reports our
in-process throughput (parse_bounce over bytes already in memory: no start-up, no I/O).

CORPUS defaults to ../shared/bounce-corpus beside the repository.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TARGET_RATIO = 2.5  # issue 6: at least 2.5x Sisimai 4.25's single-process throughput


def engines() -> dict[str, list[str]]:
    """Command lines of the engines that are available here."""
    out = {"bouncemgr": [sys.executable, "-m", "bounces.parsing.cli", "--files-from", "-"]}
    sisimai = SHARED / "tools" / "engines" / "sisimai_engine.pl"
    if shutil.which("perl") and sisimai.is_file():
        out["sisimai-4.25"] = ["perl", str(sisimai)]
    flufl_engine = SHARED / "tools" / "engines" / "flufl_engine.py"
    try:
        import flufl.bounce  # noqa: F401
    except ImportError:
        return out
    if flufl_engine.is_file():
        out["flufl.bounce"] = [sys.executable, str(flufl_engine)]
    return out


def timed_run(cmd: list[str], stdin: str) -> tuple[float, int]:
    """Wall seconds and output lines of one engine process."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"  ! {cmd[0]} exited {proc.returncode}: {proc.stderr[-300:]}", file=sys.stderr)
    return wall, proc.stdout.count("\n")


def in_process(paths: list[Path], passes: int) -> float:
    """Our msgs/s inside this process: bytes already read, imports done."""
    sys.path.insert(0, str(REPO))
    from bounces.parsing import parse_bounce

    raws = [p.read_bytes() for p in paths]
    for raw in raws:  # warm-up: lazy imports, regex caches
        parse_bounce(raw)
    t0 = time.perf_counter()
    for _ in range(passes):
        for raw in raws:
            parse_bounce(raw)
    return len(raws) * passes / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", default=str(SHARED / "bounce-corpus"))
    ap.add_argument("--passes", type=int, default=10, help="feed the path list this many times")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per engine (best is kept)")
    args = ap.parse_args(argv)

    eml = Path(args.corpus) / "eml"
    if not eml.is_dir():
        ap.error(f"no corpus at {args.corpus} (expected an eml/ folder)")
    paths = sorted(p.resolve() for p in eml.iterdir() if p.is_file())
    listing = "".join(f"{p}\n" for p in paths) * max(1, args.passes)
    n = len(paths) * max(1, args.passes)
    print(f"corpus {args.corpus}: {len(paths)} messages x {args.passes} passes = {n} per run, "
          f"best of {args.repeat} runs, one process per engine", flush=True)

    results: dict[str, tuple[float, float, float]] = {}
    for name, cmd in engines().items():
        walls = [timed_run(cmd, listing)[0] for _ in range(max(1, args.repeat))]
        startup = min(timed_run(cmd, "")[0] for _ in range(2))
        wall = min(walls)
        results[name] = (wall, n / wall, n / (wall - startup) if wall > startup else float("nan"))

    base = results.get("sisimai-4.25")
    print(f"{'engine':<14} {'wall s':>8} {'msgs/s':>9} {'net msgs/s':>11} {'vs sisimai':>11}")
    for name, (wall, rate, net) in results.items():
        ratio = f"{rate / base[1]:.2f}x" if base else "-"
        print(f"{name:<14} {wall:8.3f} {rate:9.0f} {net:11.0f} {ratio:>11}")
    warm = in_process(paths, max(1, args.passes))
    print(f"bouncemgr in-process (no start-up, no I/O): {warm:.0f} msgs/s")
    if base:
        ratio = results["bouncemgr"][1] / base[1]
        verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
        print(f"bouncemgr / sisimai-4.25 = {ratio:.2f}x ({verdict} the {TARGET_RATIO}x target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
