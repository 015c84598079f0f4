#!/usr/bin/env python3
"""Benchmark: bouncemgr's engine vs Sisimai 4.25 (Debian libsisimai-perl) vs flufl.bounce.

    .venv/bin/python bench/bench_engine.py [CORPUS] [--passes 10] [--repeat 3]

Each engine runs as ONE process that reads the corpus's .eml paths on stdin (the list fed
``--passes`` times, so the start-up of perl/python weighs little) and prints JSON lines,
exactly as shared/tools/score_engine.py drives engines. Wall time is from process start to
exit, the best of ``--repeat`` runs (interleaved: one run of each engine per round); "net"
subtracts the engine's time on empty input. The ratio column compares with Sisimai
measured in the same run. A last line reports our in-process throughput (parse_bounce over
bytes already in memory: no start-up, no I/O), per CPU second and per wall second. The load
average is printed before and after: other work on the machine slows every engine, so
compare ratios, not msgs/s.

Bytecode: an installed Python program starts from compiled bytecode (pip writes it at
install time, Python itself on the first run). Where PYTHONDONTWRITEBYTECODE is set (as in
our sandboxes) every process would recompile our ~40 modules from source, about 30 ms of
start-up that no deployment pays. So the engines run with a bytecode cache in a temporary
directory (PYTHONPYCACHEPREFIX), filled by one untimed run of each engine, which also
warms the OS file cache for all of them alike. ``--no-bytecode-cache`` measures without it
(Perl has no such cache: Sisimai compiles its modules at every start either way).

CORPUS defaults to ../shared/bounce-corpus beside the repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TARGET_RATIO = 2.5  # issue 6: at least 2.5x Sisimai 4.25's single-process throughput
TARGET_IN_PROCESS = 4000  # issue 13: parse_bounce over bytes in memory, messages per second


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


def _load() -> str:
    """The 1/5/15-minute load averages, or "?" where the system has none."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def engine_env(pycache: str | None) -> dict[str, str]:
    """The engines' environment: with a bytecode cache directory unless ``pycache`` is None."""
    env = dict(os.environ)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def timed_run(cmd: list[str], stdin: str, env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and output lines of one engine process."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, cwd=REPO, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"  ! {cmd[0]} exited {proc.returncode}: {proc.stderr[-300:]}", file=sys.stderr)
    return wall, proc.stdout.count("\n")


def in_process(paths: list[Path], passes: int, repeat: int = 3) -> tuple[float, float]:
    """Our msgs/s inside this process (bytes already read, imports done): the best of
    ``repeat`` timings, by wall clock and by this process's CPU time (less sensitive to
    other work on the machine)."""
    sys.path.insert(0, str(REPO))
    from bounces.parsing import parse_bounce

    raws = [p.read_bytes() for p in paths]
    for raw in raws:  # warm-up: lazy imports, regex caches
        parse_bounce(raw)
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(passes):
            for raw in raws:
                parse_bounce(raw)
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    n = len(raws) * passes
    return n / best_wall, n / max(best_cpu, 1e-9)


def measure(cmds: dict[str, list[str]], one_pass: str, passes: int, repeat: int,
            env: dict[str, str]) -> dict[str, tuple[float, float, float]]:
    """Per engine: best wall seconds, msgs/s on it, and msgs/s net of start-up.

    Each timed run feeds the path list ``one_pass`` ``passes`` times to one process."""
    listing = one_pass * passes
    n = one_pass.count("\n") * passes
    for cmd in cmds.values():
        timed_run(cmd, one_pass, env)  # untimed: fills the bytecode and file caches
    walls: dict[str, list[float]] = {name: [] for name in cmds}
    startups: dict[str, list[float]] = {name: [] for name in cmds}
    # Interleaved rounds (each engine once per round): on a shared machine whose load
    # drifts, every engine then sees the same conditions and the ratios stay comparable.
    for i in range(repeat):
        for name, cmd in cmds.items():
            walls[name].append(timed_run(cmd, listing, env)[0])
            if i < 2:
                startups[name].append(timed_run(cmd, "", env)[0])
    results: dict[str, tuple[float, float, float]] = {}
    for name in cmds:
        wall, startup = min(walls[name]), min(startups[name])
        results[name] = (wall, n / wall, n / (wall - startup) if wall > startup else float("nan"))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", default=str(SHARED / "bounce-corpus"))
    ap.add_argument("--passes", type=int, default=10, help="feed the path list this many times")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per engine (best is kept)")
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="run the engines as the environment says (recompiling sources if it forbids .pyc)")
    args = ap.parse_args(argv)

    eml = Path(args.corpus) / "eml"
    if not eml.is_dir():
        ap.error(f"no corpus at {args.corpus} (expected an eml/ folder)")
    paths = sorted(p.resolve() for p in eml.iterdir() if p.is_file())
    one_pass = "".join(f"{p}\n" for p in paths)
    n = len(paths) * max(1, args.passes)
    print(f"corpus {args.corpus}: {len(paths)} messages x {args.passes} passes = {n} per run, "
          f"best of {args.repeat} runs, one process per engine", flush=True)
    print(f"load average before: {_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as tmp:
        pycache = None if args.no_bytecode_cache else tmp
        print("bytecode cache: " + ("none (as the environment says)" if pycache is None
                                    else "warmed by one untimed run per engine"), flush=True)
        results = measure(engines(), one_pass, max(1, args.passes), max(1, args.repeat), engine_env(pycache))

    base = results.get("sisimai-4.25")
    print(f"{'engine':<14} {'wall s':>8} {'msgs/s':>9} {'net msgs/s':>11} {'vs sisimai':>11}")
    for name, (wall, rate, net) in results.items():
        ratio = f"{rate / base[1]:.2f}x" if base else "-"
        print(f"{name:<14} {wall:8.3f} {rate:9.0f} {net:11.0f} {ratio:>11}")
    print(f"load average after: {_load()}")
    warm, warm_cpu = in_process(paths, max(1, args.passes), max(1, args.repeat))
    # parse_bounce is single-threaded and CPU-bound: msgs per CPU second is what it does when
    # it has a core; wall clock equals it only on an idle machine (both are printed)
    verdict = "meets" if warm_cpu >= TARGET_IN_PROCESS else "BELOW"
    print(f"bouncemgr in-process (no start-up, no I/O): {warm_cpu:.0f} msgs/s of CPU time, {warm:.0f} msgs/s "
          f"wall ({verdict} the {TARGET_IN_PROCESS} msgs/s target)")
    if base:
        ratio = results["bouncemgr"][1] / base[1]
        verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
        print(f"bouncemgr / sisimai-4.25 = {ratio:.2f}x ({verdict} the {TARGET_RATIO}x target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
