"""Processes on this machine, told apart for good: a PID with its start time (a reused PID is
another process), and the machine a process was named on — host, kernel boot and PID namespace —
so that a PID is compared only where it means the same process. Read from Linux's /proc;
elsewhere nothing is known, and callers take a process they cannot judge to be alive."""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from pathlib import Path


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state first); OSError as raised."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat); None
    when /proc shows no such process, or one that has exited and waits to be reaped (a zombie)."""
    try:
        fields = _stat(pid)
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def command_line(pid: int) -> str:
    """The process's command line ('' when it cannot be read)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@functools.lru_cache(maxsize=1)
def machine() -> str | None:
    """Where this process's PIDs mean what they say: host name, kernel boot and PID namespace,
    hashed (None where /proc does not tell them)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return hashlib.sha256(f"{socket.gethostname()}\0{boot}\0{namespace}".encode()).hexdigest()[:16]


def this_process() -> str | None:
    """This process's name for good: `<machine>/<pid>.<start ticks>` (None where unknown). A
    fork gets its own (the PID is read on each call)."""
    pid = os.getpid()
    place, start = machine(), start_ticks(pid)
    return f"{place}/{pid}.{start}" if place and start else None


def has_exited(name: str) -> bool:
    """Whether the process `this_process()` named so has exited: only when that is known (its
    PID is gone, a zombie, or another process's). A name from another machine, or a process
    /proc will not show (hidepid, no file descriptor left), counts as running."""
    place, _, process = name.partition("/")
    pid, _, start = process.partition(".")
    if not place or place != machine() or not pid.isdigit() or not start:
        return False
    try:
        fields = _stat(int(pid))
    except FileNotFoundError:  # gone, or hidden from us (hidepid): the kernel tells which
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
    except (OSError, IndexError):
        return False
    return fields[0] in ("Z", "X") or fields[19] != start
