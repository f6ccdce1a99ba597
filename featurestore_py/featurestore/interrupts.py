"""Ctrl-C, honoured within moments in every phase of a command.

`noticing_interrupts`: some code between the signal and our boundary catches the KeyboardInterrupt
and fails another way, or not at all (dbt, parsing, breaks into a half-read macro config and reports
that; an import wrapped in a broad `except` swallows it). While it is active, every SIGINT is
counted as well as raised, so the command can tell afterwards that it was interrupted.

`interrupt_on_sigint`: a running statement is stopped — DuckDB's through its connection's
`interrupt()`, PostgreSQL's through psycopg2's `cancel()` (psycopg2 waits inside libpq, where
Python's handler cannot run either; its select-based wait callback would let it, but forbids COPY).

Python runs its SIGINT handler only between bytecodes of the main thread, and the DuckDB client
checks for the signal in some phases of a statement but not all (a `create table … as` over a
large join, Arrow's C reader pulling a streamed result): there, Ctrl-C waited for the statement
to finish — minutes on a large one. The C-level handler does write the signal's number to the
wakeup file descriptor at once, whatever the main thread is doing; a watcher thread reads it and
interrupts every open connection. The statement then fails with DuckDB's interrupt error, which
`_engine_errors` turns into KeyboardInterrupt, and Python's own handler raises it too.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import weakref
from contextlib import contextmanager

_lock = threading.Lock()
_connections: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # open connection -> its stop method
_installed = False
_seen = 0  # SIGINTs taken by _noticed


def _noticed(signum, frame):
    global _seen
    _seen += 1
    signal.default_int_handler(signum, frame)


def _means_stop() -> bool:
    """Whether Ctrl-C currently means "stop now" (a scheduled sync handles it itself: it finishes
    the batches in flight, then stops)."""
    return signal.getsignal(signal.SIGINT) in (signal.default_int_handler, _noticed)


@contextmanager
def noticing_interrupts():
    """Yield a function telling whether Ctrl-C reached this process since the block began (also
    when the KeyboardInterrupt it raised was caught on the way). Outside the main thread, or where
    something else handles SIGINT, it tells nothing (always False)."""
    start = _seen
    install = threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if install:
        signal.signal(signal.SIGINT, _noticed)
    try:
        yield lambda: _seen > start
    finally:
        if install:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def interrupt_on_sigint(connection, stop: str = "interrupt") -> None:
    """Have Ctrl-C stop `connection`'s running statement (for as long as it is open) by calling its
    method `stop` from another thread. A no-op outside the main thread, where the signal is not
    this process's to take."""
    global _installed
    with _lock:
        _connections[connection] = stop
        if _installed or threading.current_thread() is not threading.main_thread():
            return
        if not _means_stop():
            return  # someone else handles Ctrl-C (a server, a scheduler): leave it to them
        receiver, sender = socket.socketpair()
        sender.setblocking(False)
        try:
            previous = signal.set_wakeup_fd(sender.fileno(), warn_on_full_buffer=False)
        except ValueError:  # not the main thread of the main interpreter
            receiver.close()
            sender.close()
            return
        _installed = True
    threading.Thread(target=_watch, args=(receiver, sender, previous), name="featurestore-sigint",
                     daemon=True).start()


def _watch(receiver: socket.socket, sender: socket.socket, previous: int) -> None:
    # `sender` is held here for the process's life: its descriptor is the wakeup fd the C-level
    # handler writes to, and collecting the socket would close it
    while True:
        try:
            data = receiver.recv(64)
        except OSError:
            return
        if not data:
            return
        if previous >= 0:  # whoever had the wakeup descriptor before still hears of every signal
            try:
                os.write(previous, data)
            except OSError:
                pass
        if signal.SIGINT in data and _means_stop():
            with _lock:
                connections = list(_connections.items())
            for connection, stop in connections:
                try:
                    getattr(connection, stop)()
                except Exception:  # a connection closed meanwhile
                    pass
