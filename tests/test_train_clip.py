"""training/train_clip.py end to end on a tiny, easy captioned dataset (solid colours, "red square", "blue square",
...): a folder that transformers alone reads (CLIPModel, its text tower as CLIPTextModel, tokenizer, image
processor), a trained mini CLIP that retrieves held-out pairs and ranks the real images' own captions first well
above chance (vae_hub.text_image_metrics), bit-identical resume (one process), and one clear error per bad input.
"""

import json
import re
import shutil
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import pytest
import torch
from datasets_util import png_bytes
from hub_doubles import TOKEN
from safetensors.torch import load_file
from test_train import run_in_process, tree_hash
from test_train_text_to_image import train
from transformers import CLIPModel, CLIPTextModel, CLIPTokenizer

from vae_hub.data import decode_images, load_image_dataset
from vae_hub.mini_clip import MiniClip
from vae_hub.text_image_metrics import text_image_alignment


REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "training" / "train_clip.py"
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 30),
    "blue": (30, 30, 220),
    "yellow": (230, 220, 30),
    "black": (10, 10, 10),
    "white": (245, 245, 245),
    "purple": (140, 30, 160),
    "orange": (250, 140, 20),
}
CAPTION_COLUMN = "caption"
TINY = [
    "--caption_column",
    CAPTION_COLUMN,
    "--resolution",
    "16",
    "--patch_size",
    "8",
    "--text_hidden_size",
    "16",
    "--text_layers",
    "1",
    "--text_heads",
    "2",
    "--vision_hidden_size",
    "16",
    "--vision_layers",
    "1",
    "--vision_heads",
    "2",
    "--projection_dim",
    "8",
    "--tokenizer_vocab_size",
    "520",
    "--train_batch_size",
    "16",
    "--learning_rate",
    "1e-2",
    "--lr_warmup_steps",
    "3",
    "--num_candidates",
    "4",
    "--report_to",
    "none",
]


def colour_split(n: int, seed: int) -> dict:
    """n 16×16 solid-colour images (each pixel jittered), colour i % 8, captioned "<colour> square"."""
    rng = np.random.default_rng(seed)
    names = [list(COLOURS)[i % len(COLOURS)] for i in range(n)]
    cells = [
        png_bytes(
            PIL.Image.fromarray(
                np.clip(np.array(COLOURS[c]) + rng.integers(-20, 21, (16, 16, 3)), 0, 255).astype(np.uint8)
            )
        )
        for c in names
    ]
    return {"image": cells, CAPTION_COLUMN: [f"{c} square" for c in names]}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("clip-data") / "colours"
    (root / "data").mkdir(parents=True)
    features = datasets.Features({"image": datasets.Image(), CAPTION_COLUMN: datasets.Value("string")})
    for split, (n, seed) in {"train": (64, 0), "test": (16, 1)}.items():
        table = datasets.Dataset.from_dict(colour_split(n, seed), features=features)
        table.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return {"dataset": str(root), "cache": str(root.parent / "cache")}


def command(data: dict, out: Path, *args: str) -> list[str]:
    return ["--dataset_name", data["dataset"], "--output_dir", str(out), "--cache_dir", data["cache"], *TINY, *args]


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clip-runs") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        train(
            command(
                data,
                out,
                "--max_train_steps",
                "40",
                "--lr_scheduler",
                "constant_with_warmup",
                "--validation_epochs",
                "3",
                "--hub_token",
                TOKEN,
            ),
            monkeypatch,
            script=SCRIPT,
        )
    return out


def test_run_writes_a_folder_transformers_reads(run):
    assert {p.name for p in run.iterdir()} == {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "tokenizer",
        "loss_curve.png",
        "training_info.json",
        "metrics.json",
    }
    model = CLIPModel.from_pretrained(run).eval()
    text = CLIPTextModel.from_pretrained(run).eval()  # the text tower alone, what train_text_to_image.py takes
    tokenizer = CLIPTokenizer.from_pretrained(run, subfolder="tokenizer")
    assert model.config.vision_config.image_size == 16 and model.config.projection_dim == 8
    assert text.config.max_position_embeddings == tokenizer.model_max_length
    assert text.config.vocab_size == len(tokenizer) and text.config.eos_token_id == tokenizer.eos_token_id
    ids = tokenizer(["red square", "a blue square"], padding="max_length", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(text(input_ids=ids).pooler_output, model.text_model(input_ids=ids).pooler_output)


def test_record_and_held_out_retrieval_well_above_chance(run):
    info = json.loads((run / "training_info.json").read_text())
    assert info["command"].startswith("accelerate launch training/train_clip.py --dataset_name")
    assert (info["steps"], info["num_train_images"], info["num_test_images"], info["test_split"]) == (
        40,
        64,
        16,
        "test",
    )
    assert {"transformers", "tokenizers", "torch"} <= set(info["versions"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["group_size"] == metrics["num_candidates"] == 4 and metrics["r_precision_chance"] == 0.25
    # eight colours are easy: chance is 0.25
    assert metrics["image_to_text_top1"] >= 0.75 and metrics["text_to_image_top1"] >= 0.75
    assert metrics["r_precision"] >= 0.75 and metrics["clip_score"] > 0
    for path in run.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), f"the token leaked into {path.relative_to(run)}"


def test_trained_clip_r_precision_real_vs_mismatched_captions(run, data):
    """The metric module on the trained folder: the real test images' R-precision (the ceiling) is far above chance,
    and the same images given each other's captions fall far below it."""
    clip = MiniClip.from_pretrained(run)
    test = load_image_dataset(data["dataset"], cache_dir=data["cache"])["test"]
    images = decode_images(test, "image", 16, 3, progress=False).images
    captions = test[CAPTION_COLUMN]
    real = text_image_alignment(clip, images, captions, num_candidates=4, seed=0)
    shifted = captions[1:] + captions[:1]  # every image gets the next colour's caption
    wrong = text_image_alignment(clip, images, shifted, num_candidates=4, seed=0)
    assert real["r_precision"] >= 0.75 and wrong["r_precision"] <= 0.25
    assert real["clip_score"] > wrong["clip_score"]
    recorded = json.loads((run / "metrics.json").read_text())
    assert {key: recorded[key] for key in real} == real  # what the run recorded, from the weights in memory


# ==================================================================================== resume
RESUME = ["--validation_epochs", "100", "--logging_steps", "1", "--max_train_steps", "7", "--checkpointing_steps", "3"]


def test_resume_mid_epoch_is_bit_identical(data, tmp_path, monkeypatch):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    train(command(data, reference, *RESUME), monkeypatch, script=SCRIPT)
    shutil.copytree(reference / "checkpoint-3", resumed / "checkpoint-3")
    train(command(data, resumed, *RESUME, "--resume_from_checkpoint", "latest"), monkeypatch, script=SCRIPT)
    a, b = load_file(reference / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    assert not [k for k in a if not torch.equal(a[k], b[k])], "weights differ after resume"
    logs = [json.loads((r / "checkpoint-6" / "run_log.json").read_text()) for r in (reference, resumed)]
    assert logs[1]["history"] == logs[0]["history"]
    assert json.loads((resumed / "metrics.json").read_text()) == json.loads((reference / "metrics.json").read_text())


# ==================================================================================== bad input
BAD_CASES = {
    "missing caption column": (
        ["--caption_column", "text"],
        r"--caption_column 'text' is not a column; the columns are \['image', 'caption'\]",
    ),
    "image as caption column": (["--caption_column", "image"], r"column 'image' holds Image.*not captions"),
    "heads": (["--vision_heads", "3"], r"--vision_hidden_size \(16\) must be a multiple of --vision_heads \(3\)"),
    "patch": (["--patch_size", "5"], r"--resolution \(16\) must be a multiple of --patch_size \(5\)"),
    "vocab": (["--tokenizer_vocab_size", "100"], r"--tokenizer_vocab_size must be at least 514"),
    "candidates": (["--num_candidates", "1"], r"--num_candidates must be at least 2, got 1"),
    "push": (["--push_to_hub", "--hub_model_id", "a/b"], r"train_clip.py does not push"),
    "batch larger than the data": (["--train_batch_size", "100"], r"fewer than one optimisation step"),
}


@pytest.mark.parametrize("name", BAD_CASES)
def test_bad_input_one_line_error_and_output_dir_untouched(name, data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    args, message = BAD_CASES[name]
    before = tree_hash(out)
    code, error = run_in_process(
        [*command(data, out, "--max_train_steps", "2"), *args], monkeypatch, capsys, script=SCRIPT
    )
    assert code == 2
    assert re.search(message, error), error
    assert tree_hash(out) == before
