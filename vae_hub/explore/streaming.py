"""Sampling in a worker thread that hands previews to the request as they come (``watch``)."""

import queue
import threading
from collections.abc import Callable, Iterator

import torch


def watch(sample: Callable[[Callable[[object], None], Callable[[], bool]], object]) -> Iterator[object]:
    """Run ``sample(hand, stopped)`` in a worker thread and yield what it hands over, then what it returns.

    ``hand(item)`` passes a preview to the consumer; ``stopped()`` turns true once the consumer has gone
    (``close()``: a visitor left), and the sampler then interrupts its pipeline at the next step (the pipelines'
    ``_interrupt``), so no abandoned request keeps a core. An exception in the worker is raised in the consumer.
    """
    handed: queue.Queue = queue.Queue()
    stop = threading.Event()
    done = object()  # marks the sampler's return value

    def run() -> None:
        try:
            with torch.inference_mode():
                handed.put((done, sample(handed.put, stop.is_set)))
        except BaseException as err:  # handed to the consumer, raised there
            handed.put(err)

    worker = threading.Thread(target=run, name="sampling", daemon=True)
    worker.start()
    try:
        while True:
            item = handed.get()
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, tuple) and len(item) == 2 and item[0] is done:
                yield item[1]
                return
            yield item
    finally:
        stop.set()
        worker.join()
