"""A document's figures drawn in forked processes are the figures drawn in one."""

import os
import pickle
import threading

import pytest

from trialplan.machine import usable_cores
from trialplan.model.checks import example_text, load_trial_text
from trialplan.planning import build_plan
from trialplan.render import drafts


@pytest.fixture(scope="module")
def example():
    trial = load_trial_text(example_text(), "example.yaml")
    plan = build_plan(trial)
    wanted = list(drafts.figure_refs(plan).values())
    assert len(wanted) >= 4  # enough for the second process to be used
    return trial, plan, wanted


@pytest.fixture(scope="module")
def serial(example):
    return drafts._draw(*example)


FORKS = pytest.mark.skipif(
    not hasattr(os, "fork") or usable_cores() < 2 or threading.active_count() > 1,
    reason="the figures are drawn in one process here")


@FORKS
def test_two_processes_give_the_same_bytes(example, serial):
    got = drafts._figures(*example)
    assert list(got) == list(serial) and got == serial


@FORKS
def test_a_failing_child_is_replaced_by_this_process(example, serial, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("no pipe")

    monkeypatch.setattr(pickle, "dump", broken)  # the forked child inherits the patch
    assert drafts._figures(*example) == serial


@FORKS
def test_a_failure_here_reaps_the_child_and_raises(example, monkeypatch):
    parent, real = os.getpid(), drafts._draw

    def draw(trial, plan, wanted):
        if os.getpid() == parent:
            raise RuntimeError("drawing failed")
        return real(trial, plan, wanted)

    forked, real_fork = [], os.fork

    def fork():
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(drafts, "_draw", draw)
    monkeypatch.setattr(os, "fork", fork)
    with pytest.raises(RuntimeError, match="drawing failed"):
        drafts._figures(*example)
    (pid,) = forked
    with pytest.raises(ChildProcessError):  # reaped: not left running, nor a zombie
        os.waitpid(pid, os.WNOHANG)


def test_a_process_with_other_threads_does_not_fork(example, serial, monkeypatch):
    def no_fork():
        raise AssertionError("forked with another thread running")

    monkeypatch.setattr(os, "fork", no_fork)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert drafts._figures(*example) == serial
    finally:
        stop.set()
        other.join()


@FORKS
def test_the_drawer_forked_before_the_plan_gives_the_same_bytes(example, serial):
    trial, plan, wanted = example
    with drafts._Drawer(trial) as drawer:
        assert drawer.pid is not None
        got = drawer.draw(plan, wanted)
    assert list(got) == list(serial) and got == serial


@FORKS
def test_a_failing_drawer_is_replaced_by_this_process(example, serial, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("no pipe")

    trial, plan, wanted = example
    monkeypatch.setattr(pickle, "load", broken)  # the drawer cannot read its request
    with drafts._Drawer(trial) as drawer:
        assert drawer.draw(plan, wanted) == serial


@FORKS
def test_a_failure_before_drawing_reaps_the_drawer(example):
    trial = example[0]
    with pytest.raises(RuntimeError, match="planning failed"):
        with drafts._Drawer(trial) as drawer:
            pid = drawer.pid
            raise RuntimeError("planning failed")
    with pytest.raises(ChildProcessError):  # reaped: not left waiting, nor a zombie
        os.waitpid(pid, os.WNOHANG)


def test_no_drawer_is_forked_beside_other_threads(example, serial, monkeypatch):
    monkeypatch.setattr(os, "fork", lambda: pytest.fail("forked with another thread running"))
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        trial, plan, wanted = example
        with drafts._Drawer(trial) as drawer:
            assert drawer.pid is None and drawer.draw(plan, wanted) == serial
    finally:
        stop.set()
        other.join()
