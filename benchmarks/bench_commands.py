"""The three command-line speed targets of issue 19, each beside its baseline, in one run.

1. ``trialplan plan`` on the bundled example.  Target: <= 0.6 s.
2. ``trialplan protocol example.yaml -o x.docx``.  Target: <= 2 s.
3. Cold start of ``trialplan size means --d 0.5 --power 0.8`` against
   ``Rscript -e 'pwr::pwr.t.test(d=.5, power=.8)'``.  Target: within 1.2x.
   Skipped, with a message, when Rscript with pwr is not installed.

Every command runs as a subprocess, REPEATS times (at least five), with ours
and its baseline interleaved, and each figure is the median.  The baseline of
``plan`` and ``protocol`` is another trialplan source tree given with
``--baseline-src`` (for example the code before a change, exported with
``git worktree add /tmp/before main``); without one the target itself is the
baseline and the ratio is ours / target.  Ours and the baseline both run as
``python -m trialplan`` with PYTHONPATH set to their ``src`` folder, so the
comparison is like for like; ``size`` runs through the installed
``trialplan`` script, as a user starts it.

The BLAS thread count a child would start with (threadpoolctl, after
importing numpy and scipy as trialplan does) and the load average before and
after are printed: the machine may be shared, and a figure measured under load
is slower than the command is.

Run:  python benchmarks/bench_commands.py [--repeats N] [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import os
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


def wall(cmd, env=None, cwd=None) -> float:
    """Wall seconds of one run of ``cmd``; its output is discarded, a failure raised."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   env=env, cwd=cwd)
    return time.perf_counter() - start


def env_for(src: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src)
    return env


def interleaved(pairs: dict, repeats: int) -> dict:
    """Median wall time of each named ``(cmd, env, cwd)``, run in turn ``repeats`` times."""
    for cmd, env, cwd in pairs.values():
        wall(cmd, env, cwd)  # warm the file cache
    times = {k: [] for k in pairs}
    for _ in range(repeats):
        for k, (cmd, env, cwd) in pairs.items():
            times[k].append(wall(cmd, env, cwd))
    return {k: (statistics.median(v), min(v), max(v)) for k, v in times.items()}


def blas_threads() -> str:
    """The BLAS pools a trialplan process starts with (numpy and scipy imported)."""
    code = ("import numpy, scipy.special\n"
            "from threadpoolctl import threadpool_info\n"
            "print('; '.join(f\"{i['internal_api']} {i['num_threads']} threads\" "
            "for i in threadpool_info()) or 'none')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
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
    ours_env = env_for(SRC)
    base_env = env_for(args.baseline_src / "src") if args.baseline_src else None
    py = [sys.executable, "-m", "trialplan"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; BLAS: {blas_threads()}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
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
                base, base_what = med["baseline"][0], f"{args.baseline_src}"
            else:
                base, base_what = TARGETS[name], "the target"
            rows.append((label, med["ours"], base, base_what,
                         ours / base, f"<= {TARGETS[name]:g} s", ours <= TARGETS[name]))
        tp = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "trialplan"]
        if have_r():
            med = interleaved({"ours": (tp + SIZE, None, tmp), "R": (R, None, tmp)}, repeats)
            ratio = med["ours"][0] / med["R"][0]
            rows.append(("size cold start", med["ours"], med["R"][0], "Rscript pwr.t.test",
                         ratio, f"<= {TARGETS['size']:g}x", ratio <= TARGETS["size"]))
        else:
            med = interleaved({"ours": (tp + SIZE, None, tmp)}, repeats)
            print("Rscript with pwr is not installed: the size cold-start comparison is skipped "
                  f"(trialplan size alone: median {med['ours'][0]:.3f} s)")
    print(f"load average (1, 5, 15 min) after:  {load()}")
    print(f"\nmedian of {repeats} runs each, interleaved (min-max in brackets)")
    print(f"{'':<26}{'ours':>22}  {'baseline':<34}{'ratio':>7}  {'target':<9} met")
    for label, (m, lo, hi), base, what, ratio, target, met in rows:
        print(f"{label:<26}{m:7.3f} s ({lo:.2f}-{hi:.2f})  {base:6.3f} s {what:<25.25}"
              f"{ratio:6.2f}x  {target:<9} {'yes' if met else 'NO'}")


if __name__ == "__main__":
    main()
