"""A grid of a text-to-image pipeline's samples, a row per prompt, at the folder's recommended settings (or those
given): what a person looks at before trusting the numbers.

    python -m vae_hub.prompt_grid --pipeline FOLDER --prompts "red heart, twemoji style" "flag: Japan, twemoji style"

writes ``FOLDER/prompts.png`` (the card shows it) unless ``--output`` says otherwise.
"""

import argparse
import os

import PIL.Image

from .images import make_grid, uint8_to_float
from .pipelines.schedulers import SCHEDULERS
from .text_to_image_evaluation import Setting, default_setting, generate, read_recommended


def prompt_grid(
    pipe, prompts: list[str], setting: Setting, per_prompt: int = 4, seed: int = 0, scale: int = 2
) -> PIL.Image.Image:
    """``per_prompt`` samples of each prompt, a row each, from one generator seeded with ``seed``."""
    images = generate(pipe, [p for p in prompts for _ in range(per_prompt)], setting, seed=seed, progress=False)
    return make_grid(uint8_to_float(images), nrow=per_prompt, scale=scale)


def main(argv: list[str] | None = None) -> str:
    from diffusers import StableDiffusionPipeline

    parser = argparse.ArgumentParser(
        prog="python -m vae_hub.prompt_grid", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    parser.add_argument("--pipeline", required=True, help="a StableDiffusionPipeline folder")
    parser.add_argument("--prompts", nargs="+", required=True)
    parser.add_argument("--per_prompt", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scheduler", choices=tuple(SCHEDULERS), default=None)
    parser.add_argument("--num_inference_steps", type=int, default=None)
    parser.add_argument("--guidance_scale", type=float, default=None)
    parser.add_argument("--output", default=None, help="default: FOLDER/prompts.png")
    args = parser.parse_args(argv)
    if not 1 <= args.per_prompt <= 16:
        parser.error(f"--per_prompt must be from 1 to 16, got {args.per_prompt}")
    try:
        pipe = StableDiffusionPipeline.from_pretrained(args.pipeline)
        base = read_recommended(args.pipeline) or default_setting(pipe)
        setting = Setting(
            args.scheduler or base.scheduler,
            args.num_inference_steps or base.num_inference_steps,
            base.guidance_scale if args.guidance_scale is None else args.guidance_scale,
        )
    except (OSError, ValueError) as err:
        parser.error(" ".join(str(err).split())[:300])
    output = args.output or os.path.join(args.pipeline, "prompts.png")
    prompt_grid(pipe, args.prompts, setting, args.per_prompt, args.seed).save(output)
    print(f"{output}: {len(args.prompts)} prompts × {args.per_prompt}, {setting.describe()}, seed {args.seed}")
    return output


if __name__ == "__main__":
    main()
