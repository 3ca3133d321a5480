"""The command line runs BLAS with one thread unless the user says otherwise."""

import os
import subprocess
import sys

PROBE = ("import os, trialplan.cli, numpy, scipy.special\n"
         "from threadpoolctl import threadpool_info\n"
         "print(os.environ['OPENBLAS_NUM_THREADS'], "
         "max(i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'))")


def _probe(**env):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env={**clean, **env}, check=True)
    return out.stdout.split()


def test_one_blas_thread_by_default():
    assert _probe() == ["1", "1"]


def test_the_users_own_setting_wins():
    setting, threads = _probe(OPENBLAS_NUM_THREADS="2")
    assert setting == "2" and int(threads) == min(2, os.cpu_count() or 1)
