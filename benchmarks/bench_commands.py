"""The three command-line speed targets of issue 19, each beside its baseline, in one run.

1. ``trialplan plan`` on the bundled example.  Target: <= 0.6 s.
2. ``trialplan protocol example.yaml -o x.docx``.  Target: <= 2 s.
3. Cold start of ``trialplan size means --d 0.5 --power 0.8`` against
   ``Rscript -e 'pwr::pwr.t.test(d=.5, power=.8)'``.  Target: within 1.2x.
   Skipped, with a message, when Rscript with pwr is not installed.

Every command runs as a subprocess, ``--repeats`` times (at least five), with ours
and its baseline interleaved, and each figure is the median.  The baseline of
``plan`` and ``protocol`` is another trialplan source tree given with
``--baseline-src`` (for example the code before a change:
``mkdir /tmp/before && git archive main src | tar -x -C /tmp/before``); without
one the target itself is the
baseline and the ratio is ours / target.  Ours and the baseline both run as
``python -m trialplan`` with PYTHONPATH set to their ``src`` folder, so the
comparison is like for like; ``size`` runs through the installed
``trialplan`` script, as a user starts it.  Every trialplan run has bytecode
caching on, as a user's Python has (the warm-up run writes the caches).

Beside each median wall time is the median CPU time of the command and its
children (pandoc included), which grows much less than the wall time when
other processes hold the cores.  The BLAS thread count a command runs with
(threadpoolctl, after importing trialplan's CLI, numpy and scipy) and the
load average before and after are printed: the machine may be shared, and a
figure measured under load is slower than the command is.

Run:  python benchmarks/bench_commands.py [--repeats N] [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
EXAMPLE = SRC / "trialplan" / "data" / "example_trial.yaml"
BIN = Path(sys.executable).with_name("trialplan")
SIZE = ["size", "means", "--d", "0.5", "--power", "0.8"]
R = ["Rscript", "-e", "pwr::pwr.t.test(d=.5, power=.8)"]
TARGETS = {"plan": 0.6, "protocol": 2.0, "size": 1.2}


def wall(cmd, env=None, cwd=None) -> tuple[float, float]:
    """Wall and CPU seconds (its own and its children's, pandoc's included) of one run of
    ``cmd``; its output is discarded, a failure raised."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   env=env, cwd=cwd)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def user_env(src: Path | None = None) -> dict:
    """The environment a user runs in: bytecode caching on (a session may have turned it
    off, which makes every run compile trialplan's modules again), and PYTHONPATH at
    ``src`` when given."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def interleaved(pairs: dict, repeats: int) -> dict:
    """Each named ``(cmd, env, cwd)`` run in turn ``repeats`` times: the median wall time,
    its range, and the median CPU time."""
    for cmd, env, cwd in pairs.values():
        wall(cmd, env, cwd)  # warm the file cache
    times = {k: [] for k in pairs}
    for _ in range(repeats):
        for k, (cmd, env, cwd) in pairs.items():
            times[k].append(wall(cmd, env, cwd))
    return {k: (statistics.median(w for w, _ in v), min(w for w, _ in v),
                max(w for w, _ in v), statistics.median(c for _, c in v))
            for k, v in times.items()}


def blas_threads() -> str:
    """The BLAS pools a trialplan command runs with (the CLI imported, then numpy, scipy)."""
    code = ("import trialplan.cli, numpy, scipy.special\n"
            "from threadpoolctl import threadpool_info\n"
            "print('; '.join(f\"{i['internal_api']} {i['num_threads']} threads\" "
            "for i in threadpool_info()) or 'none')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=user_env(SRC))
    return out.stdout.strip() or f"threadpoolctl unavailable ({out.stderr.strip()[-80:]})"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def have_r() -> bool:
    return bool(shutil.which("Rscript")) and subprocess.run(
        ["Rscript", "-e", "library(pwr)"], capture_output=True).returncode == 0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="runs per command (at least 5)")
    ap.add_argument("--baseline-src", type=Path,
                    help="another trialplan checkout whose src/ is the baseline of plan "
                         "and protocol")
    args = ap.parse_args(argv)
    repeats = max(5, args.repeats)
    ours_env = user_env(SRC)
    base_env = user_env(args.baseline_src / "src") if args.baseline_src else None
    py = [sys.executable, "-m", "trialplan"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; BLAS: {blas_threads()}; "
          f"OPENBLAS_NUM_THREADS in this shell: "
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print(f"load average (1, 5, 15 min) before: {load()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-commands-") as tmp:
        trial = Path(tmp) / "example.yaml"
        trial.write_text(EXAMPLE.read_text())
        commands = {
            "plan": ("plan example.yaml", ["plan", str(trial)]),
            "protocol": ("protocol -o x.docx", ["protocol", str(trial), "-o", "x.docx",
                                                 "--force"]),
        }
        for name, (label, cmd) in commands.items():
            pairs = {"ours": (py + cmd, ours_env, tmp)}
            if base_env:
                pairs["baseline"] = (py + cmd, base_env, tmp)
            med = interleaved(pairs, repeats)
            ours = med["ours"][0]
            if base_env:
                base, base_cpu, base_what = (med["baseline"][0], med["baseline"][3],
                                             str(args.baseline_src))
            else:
                base, base_cpu, base_what = TARGETS[name], None, "the target"
            rows.append((label, med["ours"], base, base_cpu, base_what,
                         ours / base, f"<= {TARGETS[name]:g} s", ours <= TARGETS[name]))
        tp = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "trialplan"]
        if have_r():
            med = interleaved({"ours": (tp + SIZE, user_env(), tmp), "R": (R, None, tmp)},
                              repeats)
            ratio = med["ours"][0] / med["R"][0]
            rows.append(("size cold start", med["ours"], med["R"][0], med["R"][3],
                         "Rscript pwr.t.test", ratio, f"<= {TARGETS['size']:g}x",
                         ratio <= TARGETS["size"]))
        else:
            med = interleaved({"ours": (tp + SIZE, user_env(), tmp)}, repeats)
            print("Rscript with pwr is not installed: the size cold-start comparison is skipped "
                  f"(trialplan size alone: median {med['ours'][0]:.3f} s)")
    print(f"load average (1, 5, 15 min) after:  {load()}")
    print(f"\nmedian of {repeats} runs each, interleaved: wall time (min-max), and CPU "
          "time (the process and its children)")
    print(f"{'':<20}{'ours: wall':>24} {'CPU':>7}   {'baseline: wall':>14} {'CPU':>7}  "
          f"{'':<22}{'ratio':>6}  {'target':<9} met")
    for label, (m, lo, hi, cpu), base, base_cpu, what, ratio, target, met in rows:
        base_cpu = f"{base_cpu:5.2f} s" if base_cpu is not None else "      -"
        print(f"{label:<20}{m:8.3f} s ({lo:.2f}-{hi:.2f}) {cpu:5.2f} s   {base:12.3f} s "
              f"{base_cpu}  {what:<22.22}{ratio:5.2f}x  {target:<9} "
              f"{'yes' if met else 'NO'}")


if __name__ == "__main__":
    main()
