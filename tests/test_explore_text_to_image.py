"""The Space's text-to-image logic (vae_hub.text_to_image_views) on a tiny random StableDiffusionPipeline: previews
streamed before the final images, which equal diffusers' own call; SDEdit's noised start; inpainting that keeps the
unmasked part within the autoencoder's own error; prompt walks; unknown words; bad input refused in one line.
"""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import StableDiffusionPipeline
from tiny import SIZE, tiny_stable_diffusion

from vae_hub.explore.text_to_image import (
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
from vae_hub.space_models import InputError


CAPTIONS = [
    f"{c} {s}, {st} style" for c in ("red", "green", "blue") for s in ("disc", "square") for st in ("flat", "noto")
]


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
    expected = own(
        "red disc, flat style",
        negative_prompt="blue",
        num_images_per_prompt=2,
        num_inference_steps=6,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(7),
        output_type="pt",
    ).images
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
    first = (
        own("red disc, flat style", latents=noise, num_inference_steps=6, guidance_scale=3.0, output_type="pt").images
        * 2
        - 1
    )
    assert torch.allclose(frames[:1], first, atol=1e-4)
    steps = (frames[1:] - frames[:-1]).abs().mean(dim=(1, 2, 3))
    assert steps.max() < (frames[-1] - frames[0]).abs().mean()  # no jump larger than the whole walk
    seeds = prompt_walk(pipe, "red disc", "red disc", 3, sampling, seed_b=4)  # one prompt: only the noise moves
    assert not torch.equal(seeds[0], seeds[-1])


def test_vocabulary_note(pipe):
    assert unknown_words(pipe.tokenizer, "Red disc, flat style") == []
    assert unknown_words(pipe.tokenizer, "red spaceship, spaceship") == ["spaceship"]
    assert vocabulary_note(pipe.tokenizer, "red disc") == ""
    assert vocabulary_note(pipe.tokenizer, "a red spaceship, rocket").startswith(
        "'spaceship', 'rocket' are not in this"
    )


@pytest.mark.parametrize(
    "prompt, message",
    [
        (None, "Prompt is empty"),
        ("   ", "Prompt is empty"),
        (3, "Prompt must be text"),
        ("x" * (MAX_PROMPT_CHARS + 1), f"at most {MAX_PROMPT_CHARS}"),
    ],
)
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


# ==================================================================================== the Explorer's endpoints
@pytest.fixture(scope="module")
def explorer(pipe, tmp_path_factory):
    from vae_hub.explore import Explorer, OutputFiles

    folder = tmp_path_factory.mktemp("t2i-space") / "tiny-sd"
    pipe.save_pretrained(folder)
    return Explorer(["tiny-sd"], {"tiny-sd": folder}, files=OutputFiles(folder.parent / "out"))


def editor(size: int = 40) -> dict:
    background = PIL.Image.new("RGB", (size, size), "white")
    layer = PIL.Image.new("RGBA", (size, size), (0, 0, 0, 0))
    layer.paste((0, 0, 0, 255), (0, 0, size // 2, size // 2))
    return {"background": background, "layers": [layer], "composite": None}


def test_a_text_to_image_folder_is_its_own_kind_with_its_tabs(explorer):
    assert explorer.kind("tiny-sd") == "text-to-image"
    assert explorer.tabs("tiny-sd") == (
        "Text to image",
        "Image to image",
        "Inpaint",
        "Prompt walk",
        "Compare",
        "About",
    )
    assert explorer.known_kind("tiny-sd") == "text-to-image"
    assert "text-to-image pipeline" in explorer.status("tiny-sd")
    with pytest.raises(
        InputError,
        match="is a text-to-image pipeline .* has no prior samples. Try Text to image, Image to image, "
        "Inpaint, Prompt walk or Compare, or choose",
    ):
        explorer.sample("tiny-sd")
    with pytest.raises(InputError, match="no reconstruction"):
        explorer.reconstruct("tiny-sd", PIL.Image.new("RGB", (16, 16)))


def test_text_to_image_endpoint_streams_then_gives_grid_gif_and_vocabulary_note(explorer):
    outputs = list(explorer.text_to_image("tiny-sd", "red spaceship", "", 2, 4, 2.0, 0, "DPM-Solver++"))
    *previews, (grid, final, gif, note) = outputs
    assert previews and all(p[1] is None and p[2] is None for p in previews)
    assert final is grid and gif.endswith(".gif") and "'spaceship' is not in this model's vocabulary" in note
    defaults = explorer.text_to_image_defaults("tiny-sd")  # no recorded recommendation: diffusers' own defaults
    assert defaults == {"steps": 50, "guidance": 7.5, "scheduler": "DPM-Solver++"}


def test_image_to_image_inpaint_and_walk_endpoints(explorer):
    start, result, note = explorer.image_to_image(
        "tiny-sd", PIL.Image.new("RGBA", (20, 20), (9, 90, 200, 128)), "blue disc", "", 0.5, 4, 2.0, 0, "DDIM"
    )
    assert start.size == result.size and note.startswith("Noised to step")
    image, summary = explorer.inpaint("tiny-sd", editor(), "green square", "", 4, 2.0, 0, "DPM-Solver++")
    assert "Redrew 25% of the image" in summary and "autoencoder's own round trip" in summary
    strip, gif = explorer.prompt_walk("tiny-sd", "red disc", "blue square", 4, 0, "", 3, 2.0, "Euler")
    assert gif.endswith(".gif") and strip.width > strip.height
    # Seed B is a text box: left blank (spaces too) the noise stays; "5" is seed 5, and walks the noise
    walk = {
        b: explorer.prompt_walk("tiny-sd", "red disc", "red disc", 3, 0, b, 3, 2.0, "Euler")[0] for b in ("  ", "5")
    }
    assert (
        walk["  "].tobytes()
        == explorer.prompt_walk("tiny-sd", "red disc", "red disc", 3, 0, None, 3, 2.0, "Euler")[0].tobytes()
    )
    assert walk["5"].tobytes() != walk["  "].tobytes()
    assert "data credits" in explorer.about("tiny-sd")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda ex: list(ex.text_to_image("tiny-sd", "x" * 301)), "at most 300"),
        (
            lambda ex: list(ex.text_to_image("tiny-sd", "red", num_images=17)),
            "Number of images must be a whole number",
        ),
        (lambda ex: list(ex.text_to_image("tiny-sd", "red", steps=1, scheduler="PLMS")), "Scheduler must be one of"),
        (lambda ex: ex.image_to_image("tiny-sd", None, "red"), "No image"),
        (lambda ex: ex.image_to_image("tiny-sd", PIL.Image.new("RGB", (16, 16)), "red", strength=0), "Strength"),
        (lambda ex: ex.inpaint("tiny-sd", None, "red"), "No image to inpaint"),
        (lambda ex: ex.prompt_walk("tiny-sd", "red", "", 4), "Prompt B is empty"),
        (lambda ex: ex.prompt_walk("tiny-sd", "red", "blue", 40), "Frames must be a whole number from 3 to 16"),
        (lambda ex: ex.prompt_walk("tiny-sd", "red", "blue", 4, 0, "x"), "Seed B must be a whole number"),
    ],
)
def test_bad_input_is_refused_in_one_line(explorer, call, message):
    with pytest.raises(InputError, match=message):
        call(explorer)


def rewrite_json(path, **changes) -> None:

    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize(
    "break_it, message",
    [
        (
            lambda f: rewrite_json(f / "unet" / "config.json", _class_name="UNet2DModel"),
            "its unet/ holds a 'UNet2DModel', not a UNet2DConditionModel",
        ),
        (lambda f: rewrite_json(f / "vae" / "config.json", sample_size=4096), "its images are 4096 px"),
        (
            lambda f: (f / "text_encoder" / "model.safetensors").rename(f / "text_encoder" / "pytorch_model.bin"),
            "its text_encoder/ has no safetensors weights",
        ),
        (
            lambda f: rewrite_json(f / "scheduler" / "scheduler_config.json", _class_name="os.system"),
            "its scheduler 'os.system' is not one of diffusers' schedulers",
        ),
    ],
)
def test_a_bad_text_to_image_folder_is_refused_before_its_weights_are_read(pipe, tmp_path, break_it, message):
    from vae_hub.explore import Explorer, OutputFiles

    folder = tmp_path / "bad-sd"
    pipe.save_pretrained(folder)
    break_it(folder)
    with pytest.raises(InputError, match=message) as refused:
        Explorer(["bad-sd"], {"bad-sd": folder}, files=OutputFiles(tmp_path / "out")).entry("bad-sd")
    assert str(tmp_path) not in str(refused.value)


def test_a_text_to_image_folder_over_the_size_limit_is_refused(pipe, tmp_path):
    from vae_hub.explore import Explorer, OutputFiles

    pipe.save_pretrained(tmp_path / "sd")
    ex = Explorer(["sd"], {"sd": tmp_path / "sd"}, files=OutputFiles(tmp_path / "out"), max_model_bytes=1000)
    with pytest.raises(InputError, match="above the limit of this Space of 0 MiB"):
        ex.entry("sd")


# ==================================================================================== Compare beside a vector VAE
def clip_record(**fields) -> dict:
    return {"clip": "runs/tiny-clip", "dataset": "made-up", "num_samples": 16, **fields}


@pytest.fixture(scope="module")
def compare_explorer(pipe, tmp_path_factory):
    """A text-to-image model that records its validation prompts and a measured recommended setting, one that
    records neither, and an RGB vector VAE of the same data measured by a classifier and by the same CLIP."""

    from tiny import tiny_vae

    from vae_hub.explore import Explorer, OutputFiles

    root = tmp_path_factory.mktemp("t2i-compare")
    sd, bare, vae = root / "tiny-sd", root / "bare-sd", root / "rgb-vae"
    pipe.save_pretrained(sd)
    pipe.save_pretrained(bare)
    setting = {"scheduler": "DPM-Solver++", "num_inference_steps": 3, "guidance_scale": 2.0}
    (sd / "training_info.json").write_text(
        json.dumps(
            {
                "validation_prompts": ["red disc, flat style", "  blue   square, noto style ", 7, ""],
                "dataset_name": "../datasets/made-up",
            }
        )
    )
    (sd / "metrics.json").write_text(
        json.dumps(
            {
                "sample_quality": {
                    "x": clip_record(kind="text-to-image pipeline", **setting, frechet_distance=2.0, r_precision=0.8),
                    "y": clip_record(
                        kind="text-to-image pipeline", **{**setting, "guidance_scale": 5.0}, frechet_distance=9.0
                    ),
                },
                "recommended_settings": setting,
            }
        )
    )
    tiny_vae(sample_size=SIZE, in_channels=3, likelihood="laplace", prior_components=2).save_pretrained(vae)
    (vae / "training_info.json").write_text(
        json.dumps({"dataset_name": "/data/Made_Up", "dataset_credit": "Made-up emoji (CC-BY 4.0)"})
    )
    classifier = {"classifier": "a-classifier", "dataset": "made-up", "num_samples": 16}
    (vae / "metrics.json").write_text(
        json.dumps(
            {
                "sample_quality": {
                    "standard_prior": {**classifier, "kind": "vae", "prior": "standard", "frechet_distance": 9.99},
                    "standard_prior_clip": clip_record(kind="vae", prior="standard", frechet_distance=14.25),
                }
            }
        )
    )
    folders = {"tiny-sd": sd, "bare-sd": bare, "rgb-vae": vae}
    return Explorer(list(folders), folders, files=OutputFiles(root / "out"))


def test_compare_sets_a_text_to_image_model_beside_a_vector_vae_measured_with_its_clip(compare_explorer):
    columns, table = compare_explorer.compare("rgb-vae", "tiny-sd", 4, 3)
    assert [caption for _, caption in columns] == [
        "N(0, I) prior · FD 14.25",  # the CLIP's record, not the classifier's 9.99
        "mixture prior · not measured",
        "text to image · FD 2.00 · R-precision 80.0%",
    ]
    assert (
        "| text to image | tiny-sd | DPM-Solver++, 3 steps, guidance 2, its 2 validation prompts in turn | 2.00 | "
        "80.0% | 16 |"
    ) in table
    assert "| N(0, I) prior | rgb-vae | temperature 1 | 14.25 | – | 16 |" in table and "R-precision ↑" in table
    assert table.endswith("**Training data credits:** Made-up emoji (CC-BY 4.0)")  # the images shown owe it
    # one prompt: the images /text_to_image draws for it with the same setting and seed
    columns, table = compare_explorer.compare("rgb-vae", "tiny-sd", 2, 3, "green square, noto style")
    *_, (_, drawn, _, _) = compare_explorer.text_to_image(
        "tiny-sd", "green square, noto style", "", 2, 3, 2.0, 3, "DPM-Solver++"
    )
    assert np.array_equal(np.asarray(columns[-1][0]), np.asarray(drawn))
    assert '"green square, noto style"' in table


def test_the_status_line_above_every_view_credits_the_training_data(pipe, tmp_path):
    """Text to image, Image to image, Inpaint and Prompt walk show a model's images under the status line: it carries
    the credits the training data asks for, and says nothing of credits where none were recorded."""
    from vae_hub.explore import Explorer, OutputFiles

    credited, bare = tmp_path / "credited-sd", tmp_path / "bare-sd"
    for folder in (credited, bare):
        pipe.save_pretrained(folder)
    (credited / "training_info.json").write_text(
        json.dumps({"dataset_name": "/data/made-up", "dataset_credit": "Made-up emoji (CC-BY 4.0)"})
    )
    folders = {"credited-sd": credited, "bare-sd": bare}
    ex = Explorer(list(folders), folders, files=OutputFiles(tmp_path / "out"))
    description, credit = ex.status("credited-sd").split("  \n")
    assert "text-to-image pipeline" in description and credit == "**Training data:** Made-up emoji (CC-BY 4.0)"
    assert "Training data" not in ex.status("bare-sd") and "/data/made-up" not in ex.status("credited-sd")
    (bare / "training_info.json").write_text(json.dumps({"dataset_credit": "x" * 10**6}))  # a hostile record
    ex = Explorer(list(folders), folders, files=OutputFiles(tmp_path / "out"))
    assert ex.status("bare-sd").endswith("**Training data:** " + "x" * 500 + "…")


def test_compare_partner_is_the_pipeline_of_the_vaes_data(compare_explorer, tmp_path):
    assert compare_explorer.compare_partner("rgb-vae") == "tiny-sd"  # a local copy by another path: the same data
    (compare_explorer.loader.source("rgb-vae").folder / "training_info.json").write_text('{"dataset_name": "mnist"}')
    assert compare_explorer.compare_partner("rgb-vae") is None
    (compare_explorer.loader.source("rgb-vae").folder / "training_info.json").write_text(
        '{"dataset_name": "made-up", "dataset_credit": "Made-up emoji (CC-BY 4.0)"}'
    )


def test_compare_of_a_text_to_image_model_without_prompts_or_records_says_so(compare_explorer):
    with pytest.raises(InputError, match="bare-sd records no validation prompts to draw: type a prompt"):
        compare_explorer.compare("rgb-vae", "bare-sd", 2, 0)
    columns, _ = compare_explorer.compare("rgb-vae", "bare-sd", 1, 0, "red disc")
    assert [caption for _, caption in columns] == [
        "N(0, I) prior · FD 14.25",  # no record to match: any CLIP's, never the classifier's
        "mixture prior · not measured",
        "text to image · not measured",
    ]
    with pytest.raises(
        InputError, match="tiny-sd is a text-to-image pipeline .* so it has no prior samples to compare"
    ):
        compare_explorer.compare("tiny-sd", "tiny-sd", 2, 0)
    with pytest.raises(InputError, match="Prompt is 301 characters long"):
        compare_explorer.compare("rgb-vae", "tiny-sd", 2, 0, "x" * 301)
