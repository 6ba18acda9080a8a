#!/usr/bin/env python
"""Why the Space gives each request its own share of the cores (``vae_hub/explore/cores.py``): the same diffusers
text-to-image call timed in the main thread and in other threads, at torch's default threads, then at one thread.

    python benchmarks/bench_threads.py --pipeline space/models/emoji-sd

First the call in the main thread alone, then rounds that interleave three ways of making it: in the main thread; in
a fresh ``threading.Thread`` (as each streamed request's sampling thread is); in one long-lived worker thread (as
Gradio's are). Every thread that runs torch keeps an OpenMP team of its own, and once the teams' threads outnumber the
cores libgomp stops spinning between parallel regions: with two threads each on two cores, every way becomes slow once
a second team exists. Each setting runs in a fresh interpreter, since a team outlives the calls that made it. Prints
a Markdown table of medians in milliseconds.
"""

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def probe(pipeline: str, threads: int, repeats: int) -> dict[str, float]:
    """Medians (ms) of the call in the main thread, a fresh thread and a long-lived worker, at ``threads``."""
    import torch
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(threads)
    pipe = StableDiffusionPipeline.from_pretrained(pipeline)
    pipe.set_progress_bar_config(disable=True)

    @torch.inference_mode()
    def call(i: int) -> None:
        pipe(
            "red heart, twemoji style",
            num_images_per_prompt=4,
            num_inference_steps=20,
            guidance_scale=3.0,
            generator=torch.Generator().manual_seed(i),
            output_type="pt",
        )

    def fresh_thread(i: int) -> None:
        worker = threading.Thread(target=call, args=(i,))
        worker.start()
        worker.join()

    def timed(fn, i: int) -> float:
        start = time.perf_counter()
        fn(i)
        return (time.perf_counter() - start) * 1000

    call(0)
    alone = [timed(call, i) for i in range(1, repeats + 1)]  # before any other thread has run torch
    pool = ThreadPoolExecutor(1)
    ways = {
        "main thread": call,
        "a fresh thread": fresh_thread,
        "a long-lived worker": lambda i: pool.submit(call, i).result(),
    }
    times = {way: [] for way in ways}
    for i in range(1, repeats + 1):
        for way, fn in ways.items():
            times[way].append(timed(fn, i))
    times = {"main thread, alone": alone} | times
    return {way: statistics.median(ms) for way, ms in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", default="space/models/emoji-sd", help="a StableDiffusionPipeline folder")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)  # one setting, in a child
    args = parser.parse_args()
    if args.threads:
        print(json.dumps(probe(args.pipeline, args.threads, args.repeats)))
        return
    from vae_hub.explore.cores import available_cores  # the parent only: each child probes a clean interpreter

    cores = available_cores()
    ways = ("main thread, before any other", "main thread, after", "a fresh thread", "a long-lived worker")
    print(f"| torch threads | {' | '.join(ways)} |")
    print("|---|---:|---:|---:|---:|")
    for threads in dict.fromkeys((cores, 1)):
        child = [
            sys.executable,
            __file__,
            "--pipeline",
            args.pipeline,
            "--repeats",
            str(args.repeats),
            "--threads",
            str(threads),
        ]
        medians = json.loads(subprocess.run(child, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        print(f"| {threads} (of {cores} cores) | " + " | ".join(f"{ms:.0f}" for ms in medians.values()) + " |")


if __name__ == "__main__":
    main()
