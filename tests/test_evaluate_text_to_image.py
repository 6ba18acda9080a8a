"""``python -m vae_hub.evaluate_samples`` on a text-to-image pipeline folder (vae_hub.text_to_image_evaluation): one
seeded sample per held-out caption, measured with a mini CLIP (FD, CLIP score, R-precision and its real-image
ceiling, the autoencoder's reconstructions and the empty prompt as references), recorded, and a recommended
setting chosen by the stated rule; bad flags refused in one line.
"""

import json

import datasets
import numpy as np
import PIL.Image
import pytest
import torch
from datasets_util import png_bytes
from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline
from tiny import SIZE, tiny_mini_clip, tiny_stable_diffusion

from vae_hub import evaluate_samples, prompt_grid
from vae_hub.text_to_image_card import build_card
from vae_hub.text_to_image_evaluation import (
    FD_TIE,
    RECOMMENDED_KEY,
    RULE,
    Setting,
    generate,
    read_recommended,
    recommend,
)


COLOURS = {
    "red": (200, 30, 30),
    "green": (30, 160, 30),
    "blue": (30, 30, 200),
    "black": (0, 0, 0),
    "orange": (240, 140, 0),
}
SHAPES = ("disc", "square", "bar", "ring")
CAPTIONS = [f"{colour} {shape}, {style} style" for colour in COLOURS for shape in SHAPES for style in ("flat", "noto")]


def picture(caption: str) -> PIL.Image.Image:
    colour, shape = caption.split(",")[0].split()
    yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    radius = np.hypot(yy, xx)
    inside = {
        "disc": radius < 6,
        "square": (abs(yy) < 5) & (abs(xx) < 5),
        "bar": abs(yy) < 2,
        "ring": (radius < 7) & (radius > 4),
    }[shape]
    array = np.full((SIZE, SIZE, 3), 255, dtype=np.uint8)
    array[inside] = COLOURS[colour]
    return PIL.Image.fromarray(array)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("t2i-eval")
    data = root / "shapes"
    (data / "data").mkdir(parents=True)
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")})
    for split, captions in (("train", CAPTIONS[::-1] + CAPTIONS[:8]), ("test", CAPTIONS)):
        table = datasets.Dataset.from_dict(
            {"image": [png_bytes(picture(c)) for c in captions], "caption": captions}, features=features
        )
        table.to_parquet(str(data / "data" / f"{split}-00000-of-00001.parquet"))
    return {
        "data": str(data),
        "clip": str(tiny_mini_clip(root / "clip", CAPTIONS)),
        "sd": str(tiny_stable_diffusion(root / "sd", CAPTIONS)),
        "root": root,
    }


def evaluate(folders: dict, *flags: str) -> dict:
    return evaluate_samples.main(
        [
            "--generator",
            folders["sd"],
            "--clip",
            folders["clip"],
            "--dataset_name",
            folders["data"],
            "--caption_column",
            "caption",
            "--num_inference_steps",
            "2",
            "--batch_size",
            "16",
            *flags,
        ]
    )


def test_measures_one_sample_per_caption_against_the_real_images_ceiling(folders):
    metrics = evaluate(folders, "--guidance_scale", "3")
    assert metrics["kind"] == "text-to-image pipeline" and metrics["num_samples"] == len(CAPTIONS)
    assert (metrics["scheduler"], metrics["num_inference_steps"], metrics["guidance_scale"]) == (
        "DPM-Solver++",
        2,
        3.0,
    )
    for key in ("frechet_distance", "reconstruction_frechet_distance"):
        assert np.isfinite(metrics[key]) and metrics[key] >= 0
    assert metrics["empty_prompt"]["frechet_distance"] >= 0
    assert 0 <= metrics["r_precision"] <= 1 and metrics["r_precision_chance"] == 1 / 32
    assert metrics["r_precision_ceiling"] == metrics["real_images"]["r_precision"]
    again = evaluate(folders, "--guidance_scale", "3")  # one seeded generator: the same numbers
    assert {k: again[k] for k in ("frechet_distance", "r_precision", "clip_score")} == {
        k: metrics[k] for k in ("frechet_distance", "r_precision", "clip_score")
    }


def test_first_num_samples_captions_and_a_too_large_count_refused(folders, capsys):
    assert evaluate(folders, "--num_samples", "33")["num_samples"] == 33
    with pytest.raises(SystemExit):
        evaluate(folders, "--num_samples", "41")
    assert "more than the 40 captions of test" in capsys.readouterr().err


def test_record_and_recommend_by_the_stated_rule(folders, tmp_path):
    evaluate(folders, "--guidance_scale", "1", "--record")
    evaluate(folders, "--guidance_scale", "5", "--scheduler", "DDIM", "--record", "--recommend")
    recorded = json.loads((folders["root"] / "sd" / "metrics.json").read_text())
    assert {"dpm-solver++_steps_2_guidance_1", "ddim_steps_2_guidance_5"} <= set(recorded["sample_quality"])
    chosen = recorded[RECOMMENDED_KEY]
    assert chosen == recommend(recorded["sample_quality"]) and chosen["rule"] == RULE
    assert read_recommended(folders["sd"]) == Setting(
        chosen["scheduler"], chosen["num_inference_steps"], chosen["guidance_scale"]
    )
    card = build_card(folders["sd"]).text  # the card shows the records and passes the recommended setting
    scheduler_class = {"DDIM": "DDIMScheduler", "DPM-Solver++": "DPMSolverMultistepScheduler"}[chosen["scheduler"]]
    assert f"pipe.scheduler = {scheduler_class}.from_config(pipe.scheduler.config" in card
    assert f"num_inference_steps=2,\n             guidance_scale={chosen['guidance_scale']}" in card
    assert card.count("(recommended) |") == 1 and "| DDIM, 2 steps, guidance 5 |" in card.replace("**", "")
    assert RULE in card and "40 samples, one per caption of the test split of shapes" in card
    # with no setting flag, the evaluation samples the recommended setting
    assert (
        evaluate_samples.main(
            [
                "--generator",
                folders["sd"],
                "--clip",
                folders["clip"],
                "--dataset_name",
                folders["data"],
                "--caption_column",
                "caption",
                "--batch_size",
                "40",
            ]
        )["guidance_scale"]
        == chosen["guidance_scale"]
    )


def test_recommend_takes_the_lowest_fd_within_the_r_precision_margin():
    def record(scheduler, steps, guidance, fd, r):
        return {
            "kind": "text-to-image pipeline",
            "scheduler": scheduler,
            "num_inference_steps": steps,
            "guidance_scale": guidance,
            "frechet_distance": fd,
            "r_precision": r,
        }

    records = {
        "a": record("DDIM", 20, 7.5, 9.0, 0.60),
        "b": record("DPM-Solver++", 20, 3, 4.0, 0.57),
        "c": record("DPM-Solver++", 20, 1.5, 2.0, 0.40),
        "d": record("Euler", 10, 3, 4.0, 0.58),
        "vae": {"kind": "vae", "frechet_distance": 0.1},
    }
    chosen = recommend(records)  # c follows the text too little; b and d tie on FD: fewer steps wins
    assert (chosen["scheduler"], chosen["num_inference_steps"], chosen["guidance_scale"]) == ("Euler", 10, 3)
    assert chosen["chosen_from"] == 4
    # FDs within FD_TIE of the lowest are a tie too (emoji-sd: 1.931 at 20 steps, 1.932 at 10); beyond it, the lower
    records["e"] = record("DPM-Solver++", 20, 2, 4.0 - FD_TIE / 2, 0.58)
    assert recommend(records)["num_inference_steps"] == 10
    records["e"]["frechet_distance"] = 4.0 - 2 * FD_TIE
    assert (recommend(records)["num_inference_steps"], recommend(records)["guidance_scale"]) == (20, 2)
    with pytest.raises(ValueError, match="no text-to-image setting"):
        recommend({"vae": records["vae"]})


def test_generate_is_seeded_and_leaves_the_pipelines_scheduler_alone(folders):
    pipe = StableDiffusionPipeline.from_pretrained(folders["sd"])
    images = generate(pipe, CAPTIONS[:3], Setting("Euler", 2, 2.0), seed=3, progress=False)
    assert images.dtype == torch.uint8 and images.shape == (3, 3, SIZE, SIZE)
    assert torch.equal(images, generate(pipe, CAPTIONS[:3], Setting("Euler", 2, 2.0), seed=3, progress=False))
    assert isinstance(pipe.scheduler, DPMSolverMultistepScheduler)


@pytest.mark.parametrize(
    "flags, message",
    [
        ((), "pass --clip FOLDER"),
        (("--clip", "CLIP", "--classifier", "x"), "--classifier: it is for a VAE or a class-conditional pipeline"),
        (("--clip", "CLIP", "--prior", "standard"), "--prior: it is for a VAE"),
        (("--clip", "CLIP", "--recommend"), "--recommend chooses among the recorded settings: add --record"),
        (("--clip", "CLIP", "--scheduler", "PNDM"), "invalid choice"),
        (
            ("--clip", "CLIP", "--caption_column", "words"),
            "'words' is not a column; the columns are ['image', 'caption']",
        ),
    ],
)
def test_bad_flags_one_line(folders, flags, message, capsys):
    flags = [folders["clip"] if f == "CLIP" else f for f in flags]
    with pytest.raises(SystemExit):
        evaluate_samples.main(["--generator", folders["sd"], "--dataset_name", folders["data"], *flags])
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_text_to_image_flags_refused_for_other_generators(folders, tmp_path, capsys):
    with pytest.raises(SystemExit):
        evaluate_samples.main(["--generator", str(tmp_path), "--dataset_name", folders["data"], "--scheduler", "DDIM"])
    assert "--scheduler: it is for a text-to-image pipeline" in capsys.readouterr().err
    # --clip measures a VAE too (test_evaluate_samples): a folder that holds no CLIP is named in one line
    with pytest.raises(SystemExit):
        evaluate_samples.main(
            ["--generator", str(tmp_path), "--dataset_name", folders["data"], "--clip", str(tmp_path)]
        )
    assert f"error: --clip {tmp_path}: " in capsys.readouterr().err.strip().splitlines()[-1]


def test_prompt_grid_has_a_row_per_prompt(folders, tmp_path, capsys):
    out = prompt_grid.main(
        [
            "--pipeline",
            folders["sd"],
            "--prompts",
            "red disc, flat style",
            "blue bar, noto style",
            "--per_prompt",
            "3",
            "--output",
            str(tmp_path / "grid.png"),
        ]
    )
    grid = PIL.Image.open(out)
    assert grid.size == (2 * (3 * (SIZE + 2) + 2), 2 * (2 * (SIZE + 2) + 2))  # make_grid's 2 px padding, scale 2
    assert "2 prompts × 3" in capsys.readouterr().out
