"""Ctrl-C is still an interrupt when code on the way swallows it (featurestore.interrupts), in a
real process with a real SIGINT."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120)


def test_a_swallowed_interrupt_is_still_noticed():
    result = run("""
        import os, signal
        from featurestore.interrupts import noticing_interrupts
        with noticing_interrupts() as interrupted:
            before = interrupted()
            try:  # what dbt's parser did: caught the KeyboardInterrupt and went on (or failed otherwise)
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(10**6): pass
            except BaseException:
                pass
            print(before, interrupted())
        print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    """)
    assert result.stdout.split() == ["False", "True", "True"], result.stderr


def test_a_block_without_ctrl_c_is_not_interrupted_and_nesting_counts_once():
    result = run("""
        import os, signal
        from featurestore.interrupts import noticing_interrupts
        with noticing_interrupts() as outer:
            with noticing_interrupts() as inner:
                print(inner())
            try:
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(10**6): pass
            except KeyboardInterrupt:
                print("raised")
            print(inner(), outer())
    """)
    assert result.stdout.split() == ["False", "raised", "True", "True"], result.stderr


def test_ctrl_c_interrupts_a_running_duckdb_statement(tmp_path):
    """The watcher thread interrupts the connection when the signal lands, whatever the main
    thread is doing (here: a `create table … as` DuckDB does not check signals in; without the
    watcher it runs for minutes)."""
    result = run(f"""
        import os, signal, threading, time, duckdb
        from featurestore.interrupts import interrupt_on_sigint
        connection = duckdb.connect(config={{"temp_directory": {str(tmp_path)!r}}})
        interrupt_on_sigint(connection)
        threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        started, outcome, took = time.monotonic(), "finished", None
        try:
            try:
                connection.execute("create table t as select count(*) as n from range(300000) a, range(300000) b "
                                   "where (a.range * b.range) % 7 = 3")  # 90 billion pairs, no memory
            except (duckdb.InterruptException, RuntimeError):
                outcome = "interrupted"
            took = time.monotonic() - started
            time.sleep(5)  # Python's own handler raises KeyboardInterrupt by here
        except KeyboardInterrupt:
            outcome = "interrupted"
        print(outcome)
        print(round(took if took is not None else time.monotonic() - started))
    """)
    lines = result.stdout.split("\n")
    assert lines[0] == "interrupted", result.stdout + result.stderr
    assert int(lines[1]) < 30, result.stdout  # about 1 s: the signal comes after 1 s


def test_ctrl_c_taken_by_a_worker_thread_stops_a_pool_of_writers():
    """online.run_all's wait wakes by itself: the kernel may give a process's SIGINT to any thread,
    and Python raises KeyboardInterrupt in the main thread only once that thread runs. The tasks
    here end only when stopped (or after 60 s): a wait that never woke would take that long."""
    result = run("""
        import signal, sys, threading, time
        from featurestore.online import run_all
        stop, started = threading.Event(), time.monotonic()
        def main_thread_waiting():  # for the tasks' results (not for a worker to start)
            frame = sys._current_frames()[threading.main_thread().ident]
            while frame is not None and not frame.f_code.co_filename.endswith("futures/_base.py"):
                frame = frame.f_back
            return frame is not None
        def task(i):
            if i == 0:  # a worker takes the signal, as a loaded machine's kernel did, once the main thread waits
                while not main_thread_waiting():
                    time.sleep(0.001)
                signal.pthread_kill(threading.get_ident(), signal.SIGINT)
            stop.wait(60)
        try:
            run_all(task, range(16), 4, stop)
        except KeyboardInterrupt:
            print("interrupted", stop.is_set(), time.monotonic() - started < 30)
    """)
    assert result.stdout.split() == ["interrupted", "True", "True"], result.stderr
