"""How many CPU threads one request's torch work gets: the cores, shared among the requests that run at once.

Every thread that runs torch keeps an OpenMP team of its own, and a Space runs its requests in many threads (Gradio's
workers, the sampling thread of each streamed request). Once those teams' threads outnumber the cores, libgomp stops
spinning between parallel regions, and each of the many small operations of a sampling step then waits for its team
to wake up: on 2 cores one diffusers text-to-image call took 2.2× as long in a second thread as in the main thread
(1.64 s against 0.73 s). Requests that each own ``cores // concurrent`` threads never outnumber the cores, and
together they keep every core busy: the streamed ``/text_to_image`` went from 1.74 s to 1.09 s (``benchmarks/RESULTS.md``).
"""

import os

import torch


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity, which a container limits), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity on macOS or Windows
        return max(1, os.cpu_count() or 1)


def share_cores(concurrent_requests: int) -> int:
    """Give each of ``concurrent_requests`` requests an equal share of the cores: torch's intra-op threads become
    ``available_cores() // concurrent_requests`` (at least 1), for every thread that runs torch from now on.

    ``OMP_NUM_THREADS``, when set, is the operator's choice and is kept. Call it once, before any model is loaded
    (a thread's team is sized when the thread first runs torch). Returns the number of threads per request.
    """
    if concurrent_requests < 1:
        raise ValueError(f"concurrent_requests must be at least 1, got {concurrent_requests}")
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    threads = max(1, available_cores() // concurrent_requests)
    torch.set_num_threads(threads)
    return threads
