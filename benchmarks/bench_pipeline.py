#!/usr/bin/env python
"""Sampling speed of a LatentDiffusionPipeline on this machine: 16 images (class-balanced), default steps.

    python benchmarks/bench_pipeline.py --pipeline space/models/fashion-mnist-ldm

Reports the median over ``--repeats`` runs (after one warm-up) of the whole call, and beside it, measured in the
same run, its parts: one UNet call on the guided batch and one VAE decode of the images — so the total reads as
(steps × UNet call + decode) and the ratio to that sum shows the pipeline's own overhead. Also the other shipped
schedulers at the same step count, and fewer steps. Prints a Markdown table for benchmarks/RESULTS.md.
"""

import argparse
import statistics
import time

import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

from vae_hub import LatentDiffusionPipeline
from vae_hub.pipelines import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--pipeline", required=True, help="a saved LatentDiffusionPipeline folder")
    parser.add_argument("--num_images", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = LatentDiffusionPipeline.from_pretrained(args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    labels = [i % pipe.num_classes for i in range(args.num_images)] if pipe.num_classes else None
    steps, guidance = DEFAULT_NUM_INFERENCE_STEPS, DEFAULT_GUIDANCE_SCALE

    def run(num_steps: int = steps) -> None:
        pipe(labels, num_inference_steps=num_steps, guidance_scale=guidance, generator=torch.Generator().manual_seed(0),
             output_type="pt")

    unet_batch = torch.randn(2 * args.num_images, *[pipe.unet.config.in_channels] + [pipe.unet.config.sample_size] * 2)
    unet_labels = torch.tensor(labels * 2 if labels else [0] * len(unet_batch))
    with torch.inference_mode():
        unet_call = median_seconds(lambda: pipe.unet(unet_batch, torch.tensor(500), class_labels=unet_labels), args.repeats)
        decode = median_seconds(lambda: pipe.vae.decode(unet_batch[: args.num_images]), args.repeats)
    rows = [("DPM-Solver++ (default)", steps, median_seconds(run, args.repeats))]
    for name, cls in (("DDIM", DDIMScheduler), ("Euler", EulerDiscreteScheduler)):
        default = pipe.scheduler
        pipe.scheduler = cls.from_config(default.config)
        rows.append((name, steps, median_seconds(run, args.repeats)))
        pipe.scheduler = default
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    rows.append(("DPM-Solver++", 10, median_seconds(lambda: run(10), args.repeats)))

    print(f"{args.num_images} images, guidance {guidance} (UNet on a batch of {len(unet_batch)}), "
          f"{args.threads} threads; medians of {args.repeats}")
    print(f"one UNet call: {unet_call * 1000:.1f} ms · one VAE decode of {args.num_images}: {decode * 1000:.1f} ms")
    print("| scheduler | steps | seconds | steps × UNet call + decode | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, n, seconds in rows:
        parts = n * unet_call + decode
        print(f"| {name} | {n} | {seconds:.3f} | {parts:.3f} | {seconds / parts:.2f} |")


if __name__ == "__main__":
    main()
