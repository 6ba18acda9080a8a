#!/usr/bin/env python
"""Sampling speed of a shipped pipeline on this machine: 16 images at its default settings.

    python benchmarks/bench_pipeline.py --pipeline space/models/fashion-mnist-ldm     # LatentDiffusionPipeline
    python benchmarks/bench_pipeline.py --pipeline space/models/emoji-sd              # StableDiffusionPipeline

A class-conditional ``LatentDiffusionPipeline`` draws 16 class-balanced images at ``DEFAULT_NUM_INFERENCE_STEPS`` and
``DEFAULT_GUIDANCE_SCALE``; a text-to-image ``StableDiffusionPipeline`` draws one image for each of 16 prompts at the
folder's recommended setting (``vae_hub.text_to_image_evaluation``), and, beside it, at diffusers' own defaults
(50 steps, guidance 7.5). Reports the median over ``--repeats`` runs (after one warm-up) of the whole call, and its
parts measured in the same run: one UNet call on the guided batch and one VAE decode of the images, so the total
reads as (steps × UNet call + decode) and the ratio to that sum shows the pipeline's own overhead. Also the other
schedulers at the same step count, and fewer steps. Prints a Markdown table for benchmarks/RESULTS.md.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from vae_hub import LatentDiffusionPipeline
from vae_hub.pipelines import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS
from vae_hub.pipelines.schedulers import SCHEDULERS, build_scheduler, scheduler_name


PROMPTS = [
    "red heart, twemoji style",
    "grinning face, noto style",
    "flag: Japan, twemoji style",
    "lady beetle, noto style",
    "sailboat, twemoji style",
    "smiling face with sunglasses, twemoji style",
    "thumbs up, noto style",
    "rocket, twemoji style",
    "pizza, noto style",
    "cat face, twemoji style",
    "sun, noto style",
    "four leaf clover, twemoji style",
    "teacup without handle, noto style",
    "guitar, twemoji style",
    "snowman, noto style",
    "red apple, twemoji style",
]


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def class_conditional(folder: str, num_images: int):
    """(pipe, call(num_steps, guidance), UNet call on the guided batch, default steps and guidance)."""
    pipe = LatentDiffusionPipeline.from_pretrained(folder)
    labels = [i % pipe.num_classes for i in range(num_images)] if pipe.num_classes else None
    batch = torch.randn(2 * num_images, pipe.unet.config.in_channels, *[pipe.unet.config.sample_size] * 2)
    batch_labels = torch.tensor(labels * 2 if labels else [0] * len(batch))

    def call(steps: int, guidance: float) -> None:
        pipe(
            labels,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=torch.Generator().manual_seed(0),
            output_type="pt",
        )

    return (
        pipe,
        call,
        lambda: pipe.unet(batch, torch.tensor(500), class_labels=batch_labels),
        (DEFAULT_NUM_INFERENCE_STEPS, DEFAULT_GUIDANCE_SCALE),
    )


def text_to_image(folder: str, num_images: int):
    """The same for a StableDiffusionPipeline folder: one image per prompt, at its recommended setting."""
    from diffusers import StableDiffusionPipeline

    from vae_hub.text_to_image_evaluation import default_setting, read_recommended

    pipe = StableDiffusionPipeline.from_pretrained(folder)
    setting = read_recommended(folder) or default_setting(pipe)
    pipe.scheduler = build_scheduler(setting.scheduler, pipe.scheduler.config)
    prompts = (PROMPTS * (num_images // len(PROMPTS) + 1))[:num_images]
    with torch.inference_mode():
        states = pipe.encode_prompt(prompts, "cpu", 1, True, [""] * num_images)
    batch = torch.randn(2 * num_images, pipe.unet.config.in_channels, *[pipe.unet.config.sample_size] * 2)
    hidden = torch.cat([states[1], states[0]])

    def call(steps: int, guidance: float) -> None:
        pipe(
            prompts,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=torch.Generator().manual_seed(0),
            output_type="pt",
        )

    return (
        pipe,
        call,
        lambda: pipe.unet(batch, torch.tensor(500), encoder_hidden_states=hidden),
        (setting.num_inference_steps, setting.guidance_scale),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument(
        "--pipeline", required=True, help="a saved LatentDiffusionPipeline or StableDiffusionPipeline folder"
    )
    parser.add_argument("--num_images", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    index = json.loads((Path(args.pipeline) / "model_index.json").read_text())
    build = text_to_image if index.get("_class_name") == "StableDiffusionPipeline" else class_conditional
    pipe, call, unet_call, (steps, guidance) = build(args.pipeline, args.num_images)
    pipe.set_progress_bar_config(disable=True)
    latents = torch.randn(args.num_images, pipe.unet.config.in_channels, *[pipe.unet.config.sample_size] * 2)
    with torch.inference_mode():
        unet_seconds = median_seconds(unet_call, args.repeats)
        decode = median_seconds(lambda: pipe.vae.decode(latents), args.repeats)
    own = scheduler_name(pipe.scheduler)
    rows = [(f"{own} (default)", steps, guidance, median_seconds(lambda: call(steps, guidance), args.repeats))]
    default = pipe.scheduler
    for name in SCHEDULERS:
        if name != own:
            pipe.scheduler = build_scheduler(name, default.config)
            rows.append((name, steps, guidance, median_seconds(lambda: call(steps, guidance), args.repeats)))
    pipe.scheduler = default
    rows.append((own, 10, guidance, median_seconds(lambda: call(10, guidance), args.repeats)))
    if build is text_to_image:  # what StableDiffusionPipeline.__call__ does when given no settings
        rows.append((f"{own}, diffusers' defaults", 50, 7.5, median_seconds(lambda: call(50, 7.5), args.repeats)))

    print(
        f"{args.num_images} images (UNet on a guided batch of {2 * args.num_images}), {args.threads} threads; "
        f"medians of {args.repeats}"
    )
    print(f"one UNet call: {unet_seconds * 1000:.1f} ms · one VAE decode of {args.num_images}: {decode * 1000:.1f} ms")
    print("| scheduler | steps | guidance | seconds | steps × UNet call + decode | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, n, g, seconds in rows:
        parts = n * unet_seconds + decode
        print(f"| {name} | {n} | {g:g} | {seconds:.3f} | {parts:.3f} | {seconds / parts:.2f} |")


if __name__ == "__main__":
    main()
