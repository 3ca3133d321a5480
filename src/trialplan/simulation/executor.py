"""Run chunks of Monte Carlo replicates: serially, on a local process pool, or on Dask.

The unit of work is a *chunk*: ``fn(payload, chunk, seed_sequence)`` for one
job (a keyed payload, e.g. one scenario) and one chunk index.  Each chunk's
randomness comes only from ``numpy.random.SeedSequence(seed).spawn(...)[chunk]``
(built directly as ``SeedSequence(seed, spawn_key=(chunk,))``), and the
caller combines chunk results in chunk order, so a run gives the same bytes
whatever the number of workers, where they run and the order they finish in.

- Locally a :class:`concurrent.futures.ProcessPoolExecutor` runs chunks on
  every core; each chunk runs with its BLAS limited to one thread
  (threadpoolctl), because multithreaded BLAS in several processes fights
  over the same cores (a 30-fold slowdown of the fixed-effects fits was
  measured on a loaded two-core machine).
- ``scheduler=ADDRESS`` submits the same chunks to an existing Dask
  distributed cluster (``pip install trialplan[distributed]``).
- A checkpoint file gets one JSON line per finished chunk, written and
  flushed as it finishes; a later run with the same checkpoint and the same
  fingerprint skips those chunks.
- A chunk that raises is retried (``retries`` times); a chunk that still
  fails marks its job failed with the message, and the other jobs go on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trialplan.errors import InputError

CHECKPOINT_FORMAT = "trialplan-simulate-checkpoint/2"
#: Seconds to wait for a Dask scheduler before reporting it unreachable.
CONNECT_TIMEOUT = 5.0


def chunk_seed(seed: int, chunk: int) -> np.random.SeedSequence:
    """The seed sequence of one chunk: ``SeedSequence(seed).spawn(chunk + 1)[chunk]``."""
    return np.random.SeedSequence(seed, spawn_key=(chunk,))


def run_chunk(fn: Callable, payload, chunk: int, seed: int):
    """One chunk with BLAS limited to one thread (in whatever process runs it)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return fn(payload, chunk, chunk_seed(seed, chunk))


@dataclass
class Outcome:
    """Results of one job: chunk results by index, or the error that stopped it."""

    chunks: dict = field(default_factory=dict)
    error: str | None = None


class Checkpoint:
    """An append-only JSON-lines record of finished chunks.

    The first line names the format and a fingerprint of the run (inputs,
    seed, replicates, chunk size); resuming with a different fingerprint is
    refused, so chunks of different runs are never mixed.  Each chunk's line
    carries a hash of its result, so a damaged or edited line is reported
    (with its line number) rather than read into the results.
    """

    def __init__(self, path, fingerprint: str):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.done: dict = {}
        if self.check(self.path):
            self._load()
        else:
            self._write_line({"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint}, "w")

    @staticmethod
    def check(path) -> bool:
        """Whether ``path`` holds a checkpoint to resume (False: none yet); refuse anything else.

        Refused before any work: a path that is not a regular file (a FIFO would
        block the run, a device swallow it) and a file that is not a trialplan
        checkpoint (it is never truncated or appended to).
        """
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise InputError(f"--checkpoint {path}: cannot read it ({exc.strerror})") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"--checkpoint {path}: not a regular file (a directory, "
                                 "device, FIFO or socket); name a file")
            head = os.read(fd, _HEAD_BYTES) if st.st_size else b""
        finally:
            os.close(fd)
        if not head:
            return False
        try:
            first = json.loads(head.split(b"\n", 1)[0])
        except (json.JSONDecodeError, UnicodeDecodeError):
            first = None
        if not isinstance(first, dict) or first.get("format") != CHECKPOINT_FORMAT:
            raise InputError(f"--checkpoint {path}: not a trialplan simulation checkpoint "
                             f"({CHECKPOINT_FORMAT}); name a new file")
        return True

    def _load(self):
        raw = self.path.read_bytes()
        lines = raw[: raw.rfind(b"\n") + 1].decode("utf-8", errors="replace").splitlines()
        if not lines:  # killed while writing the header: start afresh
            self._write_line({"format": CHECKPOINT_FORMAT, "fingerprint": self.fingerprint}, "w")
            return
        if json.loads(lines[0]).get("fingerprint") != self.fingerprint:
            raise InputError(f"--checkpoint {self.path} was written by a different run (trial "
                             "file, scenarios, seed, replicates or chunk size differ); remove "
                             "it or name another file")
        for number, line in enumerate(lines[1:], start=2):
            try:
                rec = json.loads(line)
                key, result = (rec["job"], rec["chunk"]), rec["result"]
                intact = rec["sha256"] == _digest(result)
            except (json.JSONDecodeError, TypeError, KeyError):
                intact = False
            if not intact:
                raise InputError(f"--checkpoint {self.path}: line {number} is damaged (not a "
                                 "finished chunk as trialplan wrote it); remove that line to "
                                 "recompute its chunk, or name a new file")
            self.done[key] = result
        if len(raw) and not raw.endswith(b"\n"):
            # The last line was cut off (the run was killed mid-write): drop it.
            with open(self.path, "r+b") as fh:
                fh.truncate(raw.rfind(b"\n") + 1)

    def _write_line(self, obj, mode="a"):
        with open(self.path, mode, encoding="utf-8") as fh:
            fh.write(json.dumps(obj, allow_nan=True, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def add(self, job, chunk: int, result):
        self._write_line({"job": job, "chunk": chunk, "result": result,
                          "sha256": _digest(result)})


# The header line is far shorter; a longer first line is not a checkpoint.
_HEAD_BYTES = 4096


def _digest(result) -> str:
    """A hash of one chunk's result as JSON (what the checkpoint line stores it as)."""
    text = json.dumps(result, allow_nan=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_chunks(fn: Callable, payloads: dict, chunks: dict, *, seed: int, workers: int = 1,
               scheduler: str | None = None, checkpoint=None, fingerprint: str = "",
               retries: int = 2, progress: Callable | None = None) -> dict:
    """Run ``fn`` over every (job, chunk) and return ``{job: Outcome}``.

    Parameters
    ----------
    fn : callable
        ``fn(payload, chunk, seed_sequence)`` returning JSON-serialisable data;
        a module-level function (it is pickled to the workers).
    payloads : dict
        Job key (str) -> payload.
    chunks : dict
        Job key -> number of chunks.
    seed : int
        The run's seed; chunk ``c`` of every job uses ``chunk_seed(seed, c)``
        (common random numbers across jobs).
    workers : int
        Local processes (1: in this process).  Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a Dask distributed scheduler to run the chunks on.
    checkpoint : path, optional
        JSON-lines file of finished chunks, resumed from when it exists.
    fingerprint : str
        Identifies the run in the checkpoint.
    retries : int
        Further attempts for a chunk that raises.
    progress : callable, optional
        ``progress(done, total)`` after each chunk (in this process).
    """
    outcomes = {job: Outcome() for job in payloads}
    ckpt = Checkpoint(checkpoint, fingerprint) if checkpoint else None
    todo = []
    for job in payloads:
        for c in range(chunks[job]):
            if ckpt is not None and (job, c) in ckpt.done:
                outcomes[job].chunks[c] = ckpt.done[(job, c)]
            else:
                todo.append((job, c))
    total = sum(chunks.values())
    state = {"done": total - len(todo)}

    def finished(job, c, result):
        outcomes[job].chunks[c] = result
        if ckpt is not None:
            ckpt.add(job, c, result)
        state["done"] += 1
        if progress is not None:
            progress(state["done"], total)

    def failed(job, exc):
        if outcomes[job].error is None:
            outcomes[job].error = f"{type(exc).__name__}: {exc}"

    if progress is not None:
        progress(state["done"], total)
    if scheduler:
        _run_dask(fn, payloads, todo, seed, scheduler, retries, finished, failed)
    elif workers <= 1:
        for job, c in todo:
            if outcomes[job].error is not None:
                continue
            for attempt in range(retries + 1):
                try:
                    result = run_chunk(fn, payloads[job], c, seed)
                except Exception as exc:  # retried, then reported against its job
                    if attempt == retries:
                        failed(job, exc)
                    continue
                finished(job, c, result)
                break
    else:
        _run_pool(fn, payloads, todo, seed, workers, retries, finished, failed, outcomes)
    return outcomes


def _run_pool(fn, payloads, todo, seed, workers, retries, finished, failed, outcomes):
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    attempts = {unit: 0 for unit in todo}
    pending = list(todo)
    while pending:
        # No more processes than chunks: with fork, the pool starts all of them at once.
        pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)))
        try:
            running = {pool.submit(run_chunk, fn, payloads[job], c, seed): (job, c)
                       for job, c in pending if outcomes[job].error is None}
            pending = []
            broken = False
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    job, c = running.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        # A worker died (killed, out of memory): start a new pool and
                        # resubmit what was lost.
                        broken = True
                        pending.append((job, c))
                        continue
                    except Exception as exc:
                        attempts[(job, c)] += 1
                        if attempts[(job, c)] > retries:
                            failed(job, exc)
                        else:
                            running[pool.submit(run_chunk, fn, payloads[job], c, seed)] = (job, c)
                        continue
                    finished(job, c, result)
                if broken:
                    pending += list(running.values())
                    for job, c in pending:
                        attempts[(job, c)] += 1
                        if attempts[(job, c)] > retries:
                            failed(job, RuntimeError(f"chunk {c} lost its worker "
                                                     f"{retries + 1} times"))
                    pending = [(j, c) for j, c in pending if outcomes[j].error is None]
                    break
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def connect(address: str, timeout: float = CONNECT_TIMEOUT):
    """A Dask client for ``address``, or an :class:`InputError` within ``timeout`` seconds."""
    try:
        from distributed import Client
    except ImportError:
        raise InputError("--scheduler needs Dask distributed: pip install "
                         "'trialplan[distributed]'") from None

    class QuietClient(Client):
        """A client that, if it never connected, is let go at once: Dask's own clean-up
        waited twice the timeout at exit and printed a traceback."""

        def __del__(self):
            with contextlib.suppress(Exception):
                self.close(timeout=0.1)

    try:
        return QuietClient(address, timeout=f"{timeout}s", set_as_default=False)
    except Exception as exc:  # noqa: BLE001 (every way of not reaching a scheduler)
        # Besides refusals and timeouts: an unknown scheme (ucx://) or TLS without
        # certificates, and a server speaking another protocol, whose first bytes Dask reads
        # as a frame length of exabytes (a MemoryError).
        raise InputError(f"--scheduler {address}: cannot reach a Dask scheduler within "
                         f"{timeout:g} s ({type(exc).__name__}: {exc})") from None


def _run_dask(fn, payloads, todo, seed, address, retries, finished, failed):
    from distributed import as_completed

    client = connect(address)
    try:
        futures = {}
        for job, c in todo:
            fut = client.submit(run_chunk, fn, payloads[job], c, seed, pure=False,
                                retries=retries)
            futures[fut] = (job, c)
        for fut in as_completed(list(futures), loop=client.loop):
            job, c = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:  # Dask already retried it
                failed(job, exc)
                continue
            finished(job, c, result)
    finally:
        client.close()
