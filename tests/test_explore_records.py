"""Compare's tables of measured sample quality (``vae_hub.explore.records``): one table per way of measuring and
data, so a Fashion-MNIST classifier's numbers and an emoji CLIP's never share a table; read from the folders'
``metrics.json`` without loading any model."""

import json
from pathlib import Path

from vae_hub.explore.records import RECOMMENDED_MARK, measured_by, records_markdown


CLASSIFIER = {
    "classifier": "space/models/fashion-mnist-classifier",
    "dataset": "../shared/datasets/fashion_mnist",
    "num_samples": 10000,
}
CLIP = {
    "kind": "text-to-image pipeline",
    "scheduler": "DPM-Solver++",
    "clip": "runs/emoji-clip",
    "dataset": "../shared/datasets/emoji",
    "num_images": 756,
    "num_candidates": 32,
    "real_images": {"clip_score": 68.9, "r_precision": 0.824},
    "empty_prompt": {"frechet_distance": 5.88, "clip_score": 8.6, "r_precision": 0.03},
    "reconstruction_frechet_distance": 1.84,
}


def folder_with(path: Path, records: dict, recommended: dict | None = None) -> Path:
    path.mkdir(parents=True)
    metrics = {"sample_quality": records, **({"recommended_settings": recommended} if recommended else {})}
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


def tables(markdown: str) -> dict[str, str]:
    """Each table's heading → its text up to the next heading."""
    parts = markdown.split("#### ")[1:]
    return {part.splitlines()[0]: part for part in parts}


def test_each_way_of_measuring_gets_its_own_table(tmp_path):
    vae = folder_with(
        tmp_path / "vae",
        {
            "standard_prior": {**CLASSIFIER, "kind": "vae", "prior": "standard", "frechet_distance": 8.62},
            "mixture_prior": {**CLASSIFIER, "kind": "vae", "prior": "mixture", "frechet_distance": 5.54},
        },
    )
    ldm = folder_with(
        tmp_path / "ldm",
        {
            "steps_25_guidance_2": {
                **CLASSIFIER,
                "kind": "pipeline",
                "num_inference_steps": 25,
                "guidance_scale": 2.0,
                "frechet_distance": 0.457,
                "class_match": 0.9328,
            }
        },
    )
    sd = folder_with(
        tmp_path / "sd",
        {
            "a": {
                **CLIP,
                "num_inference_steps": 20,
                "guidance_scale": 3.0,
                "frechet_distance": 2.746,
                "clip_score": 62.24,
                "r_precision": 0.75,
            },
            "b": {
                **CLIP,
                "num_inference_steps": 10,
                "guidance_scale": 4.0,
                "frechet_distance": 2.98,
                "clip_score": 60.45,
                "r_precision": 0.7368,
            },
            "unmeasured": {"kind": "text-to-image pipeline", "frechet_distance": None},
        },
    )
    emoji_vae = folder_with(
        tmp_path / "emoji-vae",
        {
            "standard_prior_clip": {
                "kind": "vae",
                "prior": "standard",
                "clip": "space/models/emoji-clip",
                "dataset": "../shared/datasets/emoji",
                "frechet_distance": 14.25,
                "num_samples": 756,
            }
        },
    )
    markdown = records_markdown(
        [("vae", vae), ("ldm", ldm), ("emoji-sd", sd), ("emoji-vector-vae", emoji_vae)],
        {"emoji-sd": ("DPM-Solver++", 20, 3.0)},
    )
    found = tables(markdown)
    assert list(found) == [
        "Samples of `fashion_mnist` models, measured with the classifier `fashion-mnist-classifier`",
        "Samples of `emoji` models, measured with the CLIP `emoji-clip`",
    ]
    classes, text = found.values()
    assert "| vae | mixture prior | temperature 1 | 5.54 | – | 10,000 |" in classes
    assert "| ldm | diffusion | 25 steps, guidance 2 | 0.46 | 93.3% | 10,000 |" in classes
    assert "emoji-sd" not in classes and "CLIP score" not in classes
    assert "ldm" not in text and "class match" not in text
    rows = [line for line in text.splitlines() if line.startswith("| emoji-sd")]
    assert rows[:2] == [  # by setting; the recommended one marked
        "| emoji-sd | DPM-Solver++, 10 steps, guidance 4 | 2.98 | 60.5 | 73.7% | 756 |",
        f"| emoji-sd | DPM-Solver++, 20 steps, guidance 3 {RECOMMENDED_MARK} | 2.75 | 62.2 | 75.0% | 756 |",
    ]
    assert "| emoji-sd | *real test images (the ceiling; chance: 1 in 32)* | – | 68.9 | 82.4% | 756 |" in rows
    assert "| emoji-sd | *empty prompt at 20 steps (the floor)* | 5.88 | 8.6 | 3.0% | 756 |" in rows
    assert len(rows) == 5  # two settings, the two references and the autoencoder: no row for the unmeasured record
    # a vector VAE measured with the same CLIP joins its table, after the text-to-image rows: an FD, no text scores
    assert text.splitlines()[-3] == "| emoji-vector-vae | N(0, I) prior (temperature 1) | 14.25 | – | – | 756 |"
    assert "emoji-vector-vae" not in classes


def test_the_same_measure_on_other_data_is_another_table(tmp_path):
    a = folder_with(tmp_path / "a", {"x": {**CLASSIFIER, "kind": "vae", "prior": "standard", "frechet_distance": 1.0}})
    b = folder_with(
        tmp_path / "b",
        {"x": {**CLASSIFIER, "kind": "vae", "prior": "standard", "frechet_distance": 2.0, "dataset": "someone/mnist"}},
    )
    assert len(tables(records_markdown([("a", a), ("b", b)]))) == 2
    assert measured_by({"kind": "something else", "frechet_distance": 1.0}) is None


def test_no_records_says_so(tmp_path):
    assert "no model of this space has measured" in records_markdown([("x", tmp_path)]).lower()
