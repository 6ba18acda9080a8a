"""The Space's text-to-image logic (vae_hub.text_to_image_views) on a tiny random StableDiffusionPipeline: previews
streamed before the final images, which equal diffusers' own call; SDEdit's noised start; inpainting that keeps the
unmasked part within the autoencoder's own error; prompt walks; unknown words; bad input refused in one line.
"""

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import StableDiffusionPipeline

from tiny import SIZE, tiny_stable_diffusion
from vae_hub.space_models import InputError
from vae_hub.text_to_image_views import (
    MAX_PROMPT_CHARS,
    Sampling,
    check_prompt,
    image_to_image,
    inpaint,
    mask_from_editor,
    prompt_walk,
    request_pipeline,
    text_to_image,
    unknown_words,
    vocabulary_note,
)

CAPTIONS = [f"{c} {s}, {st} style" for c in ("red", "green", "blue") for s in ("disc", "square") for st in ("flat", "noto")]


@pytest.fixture(scope="module")
def pipe(tmp_path_factory) -> StableDiffusionPipeline:
    folder = tiny_stable_diffusion(tmp_path_factory.mktemp("t2i-views") / "sd", CAPTIONS)
    pipe = StableDiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def image(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (1, 3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_previews_come_before_the_final_images_which_are_diffusers_own(pipe):
    sampling = Sampling(steps=6, guidance=3.0, seed=7, scheduler="DPM-Solver++")
    stream = list(text_to_image(pipe, "red disc, flat style", "blue", 2, sampling, previews=3))
    assert [step for step, _ in stream] == [2, 4, 6]
    previews, (_, final) = [x for _, x in stream[:-1]], stream[-1]
    assert all(p.shape == final.shape == (2, 3, SIZE, SIZE) for p in previews)
    assert not torch.equal(previews[0], final) and final.abs().max() <= 1
    own = request_pipeline(pipe, StableDiffusionPipeline, "DPM-Solver++")
    expected = own("red disc, flat style", negative_prompt="blue", num_images_per_prompt=2, num_inference_steps=6,
                   guidance_scale=3.0, generator=torch.Generator().manual_seed(7), output_type="pt").images
    assert torch.allclose(final, expected * 2 - 1, atol=1e-5)


def test_a_consumer_that_leaves_stops_the_worker(pipe):
    stream = text_to_image(pipe, "red disc", "", 1, Sampling(50, 2.0, 0, "Euler"), previews=25)
    next(stream)
    stream.close()  # joins the worker: it was interrupted at its next step, not run to the end


def test_image_to_image_shows_its_noised_start(pipe):
    sampling = Sampling(10, 3.0, 1, "DDIM")
    strong = image_to_image(pipe, image(), "green square, noto style", "", 0.6, sampling)
    weak = image_to_image(pipe, image(), "green square, noto style", "", 0.2, sampling)
    assert strong.start.shape == strong.image.shape == (1, 3, SIZE, SIZE)
    assert 0 < weak.start_timestep < strong.start_timestep < pipe.scheduler.config.num_train_timesteps
    assert not torch.equal(strong.start, strong.image)


def test_inpaint_changes_the_unmasked_part_no_more_than_the_autoencoder(pipe):
    mask = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    mask[4:12, 4:12] = True
    result = inpaint(pipe, image(), mask, "blue disc, flat style", "", Sampling(8, 3.0, 0, "DPM-Solver++"))
    assert result.image.shape == (1, 3, SIZE, SIZE)
    # the tiny random VAE's round trip is poor; the unmasked part must not be worse than it (latent mask edges aside)
    assert result.unmasked_psnr >= result.reconstruction_psnr - 1.0
    for bad, message in ((torch.zeros_like(mask), "mask is empty"), (torch.ones_like(mask), "whole image")):
        with pytest.raises(InputError, match=message):
            inpaint(pipe, image(), bad, "x", "", Sampling(2, 1.0, 0, "DDIM"))


def test_prompt_walk_ends_at_each_prompt_and_moves_smoothly(pipe):
    sampling = Sampling(6, 3.0, 3, "DPM-Solver++")
    frames = prompt_walk(pipe, "red disc, flat style", "blue square, noto style", 5, sampling)
    assert frames.shape == (5, 3, SIZE, SIZE)
    own = request_pipeline(pipe, StableDiffusionPipeline, "DPM-Solver++")
    noise = torch.randn((1, 4, SIZE // 2, SIZE // 2), generator=torch.Generator().manual_seed(3))
    first = own("red disc, flat style", latents=noise, num_inference_steps=6, guidance_scale=3.0,
                output_type="pt").images * 2 - 1
    assert torch.allclose(frames[:1], first, atol=1e-4)
    steps = (frames[1:] - frames[:-1]).abs().mean(dim=(1, 2, 3))
    assert steps.max() < (frames[-1] - frames[0]).abs().mean()  # no jump larger than the whole walk
    seeds = prompt_walk(pipe, "red disc", "red disc", 3, sampling, seed_b=4)  # one prompt: only the noise moves
    assert not torch.equal(seeds[0], seeds[-1])


def test_vocabulary_note(pipe):
    assert unknown_words(pipe.tokenizer, "Red disc, flat style") == []
    assert unknown_words(pipe.tokenizer, "red spaceship, spaceship") == ["spaceship"]
    assert vocabulary_note(pipe.tokenizer, "red disc") == ""
    assert vocabulary_note(pipe.tokenizer, "a red spaceship, rocket").startswith("'spaceship', 'rocket' are not in this")


@pytest.mark.parametrize("prompt, message", [
    (None, "Prompt is empty"), ("   ", "Prompt is empty"), (3, "Prompt must be text"),
    ("x" * (MAX_PROMPT_CHARS + 1), f"at most {MAX_PROMPT_CHARS}"),
])
def test_bad_prompts(prompt, message):
    with pytest.raises(InputError, match=message):
        check_prompt(prompt)


def test_mask_from_editor_reads_painted_layers():
    background = PIL.Image.new("RGB", (40, 32), "white")
    layer = PIL.Image.new("RGBA", (40, 32), (0, 0, 0, 0))
    layer.paste((255, 0, 0, 255), (4, 0, 20, 16))  # top-left quarter of the centre crop
    got, mask = mask_from_editor({"background": background, "layers": [layer], "composite": None}, 16)
    assert got is background and mask.shape == (16, 16)
    assert mask[:7, :7].all() and not mask[9:, 9:].any()
    with pytest.raises(InputError, match="No image to inpaint"):
        mask_from_editor({"background": None, "layers": []}, 16)
    with pytest.raises(InputError, match="differ in size"):
        mask_from_editor({"background": background, "layers": [PIL.Image.new("RGBA", (8, 8))]}, 16)
    assert np.asarray(mask).dtype == bool
