"""``explore.share_cores``: each of the Space's concurrent requests gets an equal share of the cores, in every thread
that runs torch afterwards. Each case runs in a fresh interpreter: torch's thread count is process-wide."""

import os
import subprocess
import sys

import pytest

from vae_hub.explore import available_cores, share_cores


CHECK = """
import os, sys, threading, torch
from vae_hub.explore import share_cores
{setup}
got = share_cores({concurrent})
seen = []
worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
worker.start(); worker.join()
print(got, torch.get_num_threads(), seen[0])
"""


def threads_after(concurrent: int, setup: str = "", **env: str) -> list[int]:
    environ = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | env
    code = CHECK.format(setup=setup, concurrent=concurrent)
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True)
    return [int(n) for n in out.stdout.split()]


def test_each_request_gets_its_share_of_the_cores_in_every_thread():
    share = max(1, available_cores() // 2)
    assert threads_after(2) == [share] * 3  # returned, in the calling thread, in a thread started later


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_the_cores_are_those_the_process_may_use():
    # a container that grants one core: one thread each, however many cores the machine has
    assert threads_after(2, setup="os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})") == [1, 1, 1]
    assert threads_after(1, setup="os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})") == [1, 1, 1]


@pytest.mark.skipif(available_cores() < 2, reason="one core: the share and the operator's choice are both 1")
def test_an_operators_omp_num_threads_is_kept():
    assert threads_after(1, OMP_NUM_THREADS="1") == [1, 1, 1]  # the share alone would be every core


def test_no_requests_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        share_cores(0)
