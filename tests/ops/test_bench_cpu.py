"""The CPU accounting bench/compare.py uses for "where a listing request's CPU goes" (bench/load.py).

A PostgreSQL backend (or any process) can end while a measurement runs, and another can start; the
difference must stay a real amount of CPU, never negative (an autovacuum worker that ended once made
the database's share -1.5 ms per request), and a process that started meanwhile counts whole.
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench.load import cpu_by_pid, cpu_since, processes_named

BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n{then}"


def burner(seconds: float, then: str = "") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BURN.format(seconds=seconds, then=then)], stdout=subprocess.PIPE)


def burnt(process: subprocess.Popen) -> None:
    """Wait until the burner has used its CPU and gone to sleep (on a loaded machine its 0.4 s of
    CPU may take far longer than 0.4 s of wall time)."""
    assert process.stdout.readline() == b"burnt\n"


def test_a_process_that_ends_meanwhile_is_left_out_not_subtracted():
    ending = burner(0.3, then="print('burnt', flush=True)")
    burnt(ending)  # it has used its CPU by now; read before it is reaped
    before = cpu_by_pid([ending.pid])
    assert before[ending.pid] > 0.1
    ending.wait()
    assert cpu_since(before, [ending.pid]) == 0.0


def test_a_process_that_starts_meanwhile_counts_whole():
    started = burner(0.3, then="import time; print('burnt', flush=True); time.sleep(5)")
    try:
        burnt(started)
        assert cpu_since({}, [started.pid]) > 0.2
    finally:
        started.kill()
        started.wait()


def test_a_running_process_counts_only_what_it_used_since():
    running = burner(0.4, then="import time; print('burnt', flush=True); time.sleep(5)")
    try:
        burnt(running)
        before = cpu_by_pid([running.pid])
        time.sleep(0.2)  # asleep now: no CPU since
        assert before[running.pid] > 0.2
        assert cpu_since(before, [running.pid]) < 0.05
    finally:
        running.kill()
        running.wait()


def test_processes_are_found_by_command_and_title():
    title = "cloudstorage-title-probe"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)", title])
    try:
        time.sleep(0.2)
        command = open(f"/proc/{sleeper.pid}/comm").read().strip()
        assert sleeper.pid in processes_named(command, title_contains=title)
        assert sleeper.pid not in processes_named(command, title_contains="no-such-title")
    finally:
        sleeper.kill()
        sleeper.wait()
