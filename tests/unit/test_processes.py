"""Processes told apart for good (featurestore.processes), and the bulk-load rule built on it: a
load whose holder has exited, on this machine, may be taken over before its lease runs out
(online/bulk.py `_abandoned`). Real child processes: running, stopped, killed and not yet
reaped (a zombie), killed and reaped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from featurestore import processes
from featurestore.online import bulk

pytestmark = pytest.mark.skipif(processes.machine() is None, reason="needs Linux's /proc")


def _child() -> subprocess.Popen:
    """A child that runs until it is killed, once it has started (it prints a line)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "up"
    return child


def _name_of(pid: int) -> str:
    return f"{processes.machine()}/{pid}.{processes.start_ticks(pid)}"


def test_this_process_is_named_by_machine_pid_and_start_and_is_running():
    name = processes.this_process()
    assert name == _name_of(os.getpid())
    assert not processes.has_exited(name)


def test_a_child_counts_as_running_while_it_runs_or_is_stopped_and_exited_once_killed():
    child = _child()
    name = _name_of(child.pid)
    try:
        assert not processes.has_exited(name)
        child.send_signal(signal.SIGSTOP)  # paused (a debugger, a full machine): still the holder
        assert not processes.has_exited(name)
        child.send_signal(signal.SIGCONT)
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
        assert processes.start_ticks(child.pid) is None
        assert processes.has_exited(name)
    finally:
        child.kill()
        child.wait(60)
    assert processes.has_exited(name)  # reaped: no such process


def test_a_reused_pid_is_another_process():
    place, _, process = processes.this_process().partition("/")
    pid, _, start = process.partition(".")
    assert processes.has_exited(f"{place}/{pid}.{int(start) - 1}")


@pytest.mark.parametrize("name", [
    "0123456789abcdef/1.1",  # another machine, container or PID namespace: never judged
    "", "garbage", "/1.2", "{machine}/", "{machine}/x.1", "{machine}/1", "{machine}/1.",
])
def test_a_name_of_another_machine_or_unreadable_counts_as_running(name):
    assert not processes.has_exited(name.format(machine=processes.machine()))


def test_a_load_is_abandoned_only_when_its_holder_no_longer_runs_it():
    child = _child()
    try:
        held_by_child = f"feed@{_name_of(child.pid)}"
        assert not bulk._abandoned(held_by_child)
    finally:
        child.kill()
        child.wait(60)
    assert bulk._abandoned(held_by_child)

    # this process: abandoned unless it still runs the load (a release that failed on the way out)
    mine = f"beef@{processes.this_process()}"
    bulk._RUNNING.add(mine)
    try:
        assert not bulk._abandoned(mine)
    finally:
        bulk._RUNNING.discard(mine)
    assert bulk._abandoned(mine)

    # a loader named without its process, or none: only its lease tells
    assert not bulk._abandoned("0123456789abcdef0123456789abcdef")
    assert not bulk._abandoned(None)
    assert not bulk._abandoned("cafe@0123456789abcdef/1.1")


@pytest.mark.parametrize("error", [PermissionError(13, "hidepid"), OSError(24, "Too many open files")])
def test_a_process_proc_will_not_show_counts_as_running(monkeypatch, error):
    """/proc may hide another user's processes (hidepid) or fail to open (no descriptor left):
    that is no proof of an exit, so a load is never taken over on it."""
    name = processes.this_process()

    def unreadable(pid):
        raise error

    monkeypatch.setattr(processes, "_stat", unreadable)
    assert not processes.has_exited(name)


def test_a_process_hidden_from_proc_is_asked_of_the_kernel(monkeypatch):
    """hidepid=2 makes another user's /proc/<pid> look missing: the kernel still knows whether
    the PID exists (os.kill with signal 0), and only a PID it does not know has exited."""
    child = _child()
    running = _name_of(child.pid)
    try:
        def hidden(pid):
            raise FileNotFoundError(2, "hidden")

        monkeypatch.setattr(processes, "_stat", hidden)
        assert not processes.has_exited(running)
    finally:
        child.kill()
        child.wait(60)
    assert processes.has_exited(running)
