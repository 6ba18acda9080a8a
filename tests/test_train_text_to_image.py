"""training/train_text_to_image.py end to end on a tiny captioned dataset and a tiny random AutoencoderKL: the output
folder is a plain StableDiffusionPipeline that diffusers loads in an interpreter without vae_hub (text to image,
negative prompts, truncation, image to image, inpainting), bit-identical resume (one and two CPU processes), the
card's data credits, and one clear error for each bad input.
"""

import argparse
import json
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import pytest
import torch
import tqdm
from accelerate.state import AcceleratorState, GradientState
from datasets_util import png_bytes
from diffusers import AutoencoderKL
from hub_doubles import TOKEN, FakeHfApi
from safetensors.torch import load_file
from test_train import launch_two_cpu_processes, run_in_process, tree_hash
from transformers import CLIPModel, CLIPTextModel

from vae_hub import SpatialVAEModel
from vae_hub.credits import readme_credits as data_credits
from vae_hub.mini_clip import mini_clip_config, save_mini_clip
from vae_hub.text_to_image_card import push_pipeline
from vae_hub.text_tokenizer import train_caption_tokenizer


REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "training" / "train_text_to_image.py"
CAPTION_COLUMN = "prompt_text"  # not diffusers' default "text": the run must be told
COLOURS, SHAPES, STYLES = ("red", "green", "blue"), ("circle", "square"), ("twemoji", "noto")
EMPTY_CAPTIONS = {5: "", 11: None, 17: "   "}  # rows dropped, with a count
ODD_MODES = {1: "L", 2: "RGBA", 3: "P"}  # rows whose images are not RGB: converted
README = """---
license: other
---
# tiny emoji-like data

## Where it comes from, and licenses

- Twemoji graphics: © Twitter, Inc. and other contributors, **CC-BY 4.0** — anything trained on or showing these
  images must credit "Twemoji (CC-BY 4.0)".
- Noto Emoji graphics: © Google, **Apache License 2.0**.

## Other notes
"""
TINY = [
    "--caption_column",
    CAPTION_COLUMN,
    "--block_out_channels",
    "16",
    "32",
    "--layers_per_block",
    "1",
    "--norm_num_groups",
    "8",
    "--attention_head_dim",
    "4",
    "--text_hidden_size",
    "32",
    "--text_layers",
    "1",
    "--text_heads",
    "2",
    "--tokenizer_vocab_size",
    "560",
    "--train_batch_size",
    "8",
    "--lr_warmup_steps",
    "2",
    "--num_validation_images",
    "2",
    "--num_inference_steps",
    "2",
    "--ddpm_num_steps",
    "100",
    "--report_to",
    "none",
    "--learning_rate",
    "1e-3",
]
PROMPTS = ["red circle, twemoji style", "blue square, noto style"]
WEIGHTS = ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors")


def caption(i: int) -> str | None:
    if i in EMPTY_CAPTIONS:
        return EMPTY_CAPTIONS[i]
    return f"{COLOURS[i % 3]} {SHAPES[i // 3 % 2]}, {STYLES[i // 6 % 2]} style"


def image(i: int) -> PIL.Image.Image:
    """A 16×16 picture of caption i: its colour, a disc or a square, on white; a few in other modes than RGB."""
    yy, xx = np.mgrid[:16, :16]
    inside = (np.hypot(yy - 7.5, xx - 7.5) < 6) if i // 3 % 2 == 0 else ((abs(yy - 7.5) < 5) & (abs(xx - 7.5) < 5))
    array = np.full((16, 16, 3), 255, dtype=np.uint8)
    array[inside] = [(200, 30, 30), (30, 160, 30), (30, 30, 200)][i % 3]
    picture = PIL.Image.fromarray(array)
    mode = ODD_MODES.get(i)
    return picture.convert(mode) if mode else picture


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("t2i-data")
    folder = root / "captioned"
    (folder / "data").mkdir(parents=True)
    features = datasets.Features({"image": datasets.Image(), CAPTION_COLUMN: datasets.Value("string")})
    table = datasets.Dataset.from_dict(
        {"image": [png_bytes(image(i)) for i in range(48)], CAPTION_COLUMN: [caption(i) for i in range(48)]},
        features=features,
    )
    table.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    (folder / "README.md").write_text(README)
    torch.manual_seed(0)
    kl = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 8),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
        scaling_factor=1.5,
    )  # 16×16 images ↔ 4×8×8 latents
    kl.save_pretrained(root / "autoencoder-kl")
    SpatialVAEModel(
        in_channels=3, sample_size=16, block_out_channels=(8, 8), latent_channels=4, norm_num_groups=4
    ).save_pretrained(root / "spatial-vae")
    return {
        "captioned": str(folder),
        "kl": str(root / "autoencoder-kl"),
        "spatial": str(root / "spatial-vae"),
        "cache": str(root / "cache"),
    }


@pytest.fixture(scope="module")
def mini_clip(tmp_path_factory) -> Path:
    """A tiny random mini CLIP folder (what training/train_clip.py writes), 24 wide where the TINY text encoder is 32,
    its tokenizer learned from other captions than the data's."""
    torch.manual_seed(1)
    tokenizer = train_caption_tokenizer(["a red circle", "a blue square", "green circles"] * 2, vocab_size=530)
    model = CLIPModel(
        mini_clip_config(
            tokenizer,
            text_hidden_size=24,
            text_layers=1,
            text_heads=2,
            vision_hidden_size=8,
            vision_layers=1,
            vision_heads=2,
            image_size=16,
            patch_size=8,
            projection_dim=8,
        )
    )
    folder = tmp_path_factory.mktemp("t2i-clip") / "clip"
    save_mini_clip(model, tokenizer, folder)
    return folder


def command(data: dict, out: Path, *args: str, vae: str = "kl") -> list[str]:
    return [
        "--dataset_name",
        data["captioned"],
        "--pretrained_vae_model_name_or_path",
        data[vae],
        "--output_dir",
        str(out),
        "--cache_dir",
        data["cache"],
        *TINY,
        *args,
    ]


def train(argv: list[str], monkeypatch, script: Path = SCRIPT) -> None:
    """Run the script's ``__main__`` to the end in this process."""
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    monkeypatch.setattr(sys, "argv", [str(script), *argv])
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        for bar in list(tqdm.tqdm._instances):
            bar.close()


def assert_bit_identical(a: Path, b: Path) -> None:
    for name in WEIGHTS:
        wa, wb = load_file(a / name), load_file(b / name)
        assert wa.keys() == wb.keys()
        different = [k for k in wa if not torch.equal(wa[k], wb[k])]
        assert not different, f"{name}: tensors differ after resume: {different[:5]}"


# ==================================================================================== end to end
@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("t2i-runs") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        train(
            command(
                data,
                out,
                "--max_train_steps",
                "6",
                "--use_ema",
                "--validation_epochs",
                "1",
                "--validation_prompts",
                *PROMPTS,
                "--hub_token",
                TOKEN,
            ),
            monkeypatch,
        )
    return out


def test_run_writes_a_stable_diffusion_pipeline_folder(run):
    assert {p.name for p in run.iterdir()} == {
        "model_index.json",
        "vae",
        "text_encoder",
        "tokenizer",
        "unet",
        "scheduler",
        "samples.png",
        "loss_curve.png",
        "training_info.json",
        "metrics.json",
        "README.md",
    }
    index = json.loads((run / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert (index["vae"], index["text_encoder"], index["tokenizer"], index["unet"]) == (
        ["diffusers", "AutoencoderKL"],
        ["transformers", "CLIPTextModel"],
        ["transformers", "CLIPTokenizer"],
        ["diffusers", "UNet2DConditionModel"],
    )
    assert index["safety_checker"] == [None, None] and index["feature_extractor"] == [None, None]
    assert index["requires_safety_checker"] is False
    assert {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"} <= {
        p.name for p in (run / "tokenizer").iterdir()
    }
    unet = json.loads((run / "unet" / "config.json").read_text())
    text = json.loads((run / "text_encoder" / "config.json").read_text())
    tokenizer = json.loads((run / "tokenizer" / "tokenizer_config.json").read_text())
    assert unet["cross_attention_dim"] == text["hidden_size"] == 32 and unet["sample_size"] == 8
    assert text["max_position_embeddings"] == tokenizer["model_max_length"]
    with PIL.Image.open(run / "samples.png") as grid:  # a row per prompt, 2 images each, 16 px + padding, 2× enlarged
        assert grid.size == (2 * (2 * 18 + 2), 2 * (2 * 18 + 2))


def test_training_record_counts_dropped_captions_and_hides_the_token(run):
    info = json.loads((run / "training_info.json").read_text())
    assert (info["steps"], info["num_train_images"], info["dropped_empty_captions"]) == (6, 45, 3)
    assert info["caption_column"] == CAPTION_COLUMN and info["validation_prompts"] == PROMPTS
    assert info["command"].startswith("accelerate launch training/train_text_to_image.py --dataset_name")
    assert {"transformers", "tokenizers", "diffusers", "torch"} <= set(info["versions"])
    assert json.loads((run / "metrics.json").read_text())["final_train_loss"] > 0
    for path in run.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), f"the token leaked into {path.relative_to(run)}"


def test_card_credits_the_training_data(run):
    card = (run / "README.md").read_text()
    assert "- **Twemoji (CC-BY 4.0)**" in card and "- **Noto (Apache-2.0)**" in card
    assert "pipeline_tag: text-to-image" in card and "StableDiffusionPipeline.from_pretrained" in card
    assert "Other notes" not in card  # the licence section only
    assert "a `CLIPTextModel` and a `UNet2DConditionModel`, trained\ntogether" in card and "frozen, from" not in card


def test_data_credits_from_a_readme():
    assert data_credits(README) == ["Twemoji (CC-BY 4.0)", "Noto (Apache-2.0)"]
    assert data_credits("# data\n\nNo licence section here.\n") == []
    emoji = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "emoji" / "README.md"
    if emoji.is_file():  # the project's real data, where it is at hand
        assert data_credits(emoji.read_text()) == ["Twemoji (CC-BY 4.0)", "Noto (Apache-2.0)"]


def test_push_uploads_the_pipeline_only(run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    (folder / "checkpoint-2").mkdir()
    (folder / "checkpoint-2" / "optimizer.bin").write_bytes(b"state")
    api = FakeHfApi()
    push_pipeline(folder, "someone/tiny-sd", private=True, token=TOKEN, api=api)
    (commit,) = api.commits
    assert {
        "model_index.json",
        "unet/diffusion_pytorch_model.safetensors",
        "tokenizer/vocab.json",
        "text_encoder/config.json",
        "README.md",
        "samples.png",
    } <= set(commit["files"])
    assert not [name for name in commit["files"] if name.startswith("checkpoint-")]


# The folder in diffusers alone: vae_hub cannot be imported (blocked, and the project is off sys.path).
ISOLATED = r"""
import importlib.abc, json, sys
sys.path = [p for p in sys.path if p and p.rstrip("/") != sys.argv[2].rstrip("/")]  # not the project (its .venv stays)
class NoVaeHub(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "vae_hub":
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)")
sys.meta_path.insert(0, NoVaeHub())
try:
    import vae_hub
    raise SystemExit("vae_hub was importable")
except ModuleNotFoundError:
    pass
import numpy as np, PIL.Image, torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline, StableDiffusionPipeline
folder = sys.argv[1]
pipe = StableDiffusionPipeline.from_pretrained(folder)
pipe.set_progress_bar_config(disable=True)
def run(**kw):
    return pipe("red circle, twemoji style", num_inference_steps=2, guidance_scale=4.0, output_type="np",
                generator=torch.Generator().manual_seed(0), **kw).images
plain, negative = run(negative_prompt=""), run(negative_prompt="blue square")
long = pipe("red circle " * 40, num_inference_steps=1, output_type="np").images
init = PIL.Image.new("RGB", (16, 16), (200, 30, 30))
mask = PIL.Image.new("L", (16, 16), 0); mask.paste(255, (4, 4, 12, 12))
img2img = StableDiffusionImg2ImgPipeline.from_pretrained(folder)
img2img.set_progress_bar_config(disable=True)
i2i = img2img("blue square, noto style", image=init, strength=0.6, num_inference_steps=4, output_type="np").images
inpaint = StableDiffusionInpaintPipeline.from_pretrained(folder)
inpaint.set_progress_bar_config(disable=True)
inp = inpaint("green circle, noto style", image=init, mask_image=mask, num_inference_steps=2, output_type="np",
              height=16, width=16).images
print(json.dumps({"shapes": [list(a.shape) for a in (plain, long, i2i, inp)],
                  "finite": bool(all(np.isfinite(a).all() for a in (plain, negative, long, i2i, inp))),
                  "negative_changes": float(np.abs(plain - negative).max()),
                  "vae_hub_loaded": any(m.split(".")[0] == "vae_hub" for m in sys.modules)}))
"""


def test_diffusers_alone_loads_and_runs_it(run, tmp_path):
    done = subprocess.run(
        [sys.executable, "-I", "-c", ISOLATED, str(run), str(REPO)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shapes"] == [[1, 16, 16, 3]] * 4 and result["finite"] and not result["vae_hub_loaded"]
    assert result["negative_changes"] > 0, "the negative prompt did not change the image"
    # diffusers' own warning for a prompt longer than the tokenizer's limit
    assert re.search(
        r"The following part of your input was truncated because CLIP can only handle sequences up to "
        r"\d+ tokens: .*circle",
        done.stderr,
    ), done.stderr[-2000:]


def test_pretrained_text_encoder_is_taken_frozen_with_its_tokenizer(data, mini_clip, tmp_path, monkeypatch):
    out = tmp_path / "run"
    train(
        command(
            data,
            out,
            "--max_train_steps",
            "3",
            "--use_ema",
            "--validation_epochs",
            "100",
            "--pretrained_text_encoder_model_name_or_path",
            str(mini_clip),
        ),
        monkeypatch,
    )
    shipped, tower = CLIPTextModel.from_pretrained(out / "text_encoder"), CLIPTextModel.from_pretrained(mini_clip)
    a, b = shipped.state_dict(), tower.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "the text encoder changed"
    for name in ("vocab.json", "merges.txt"):
        assert (out / "tokenizer" / name).read_bytes() == (mini_clip / "tokenizer" / name).read_bytes()
    assert json.loads((out / "unet" / "config.json").read_text())["cross_attention_dim"] == 24
    info = json.loads((out / "training_info.json").read_text())
    assert info["text_encoder"] == str(mini_clip) and info["text_encoder_frozen"] is True
    assert info["tokenizer_vocab_size"] == len(json.loads((mini_clip / "tokenizer" / "vocab.json").read_text()))
    card = (out / "README.md").read_text()
    assert "attending to a frozen `CLIPTextModel`: the\ntext tower of a mini CLIP" in card and str(mini_clip) in card
    assert "trained\ntogether" not in card and f"; frozen, from {mini_clip} |" in card


# ==================================================================================== resume
RESUME = ["--validation_epochs", "100", "--logging_steps", "1", "--max_train_steps", "7", "--checkpointing_steps", "3"]


@pytest.mark.parametrize(
    "extra",
    [
        [],
        [
            "--use_ema",
            "--gradient_accumulation_steps",
            "2",
            "--snr_gamma",
            "5",
            "--noise_offset",
            "0.1",
            "--conditioning_dropout_prob",
            "0.5",
        ],
        ["--use_ema", "--pretrained_text_encoder_model_name_or_path", "CLIP"],
    ],
    ids=["plain", "ema-accumulation-snr-offset", "frozen-pretrained-text-encoder"],
)
def test_resume_mid_epoch_is_bit_identical(data, mini_clip, tmp_path, monkeypatch, extra):
    extra = [str(mini_clip) if a == "CLIP" else a for a in extra]
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    train(command(data, reference, *RESUME, *extra), monkeypatch)
    shutil.copytree(reference / "checkpoint-3", resumed / "checkpoint-3")
    train(command(data, resumed, *RESUME, *extra, "--resume_from_checkpoint", "latest"), monkeypatch)
    assert json.loads((resumed / "training_info.json").read_text())["steps"] == 7
    assert_bit_identical(reference, resumed)
    logs = [json.loads((r / "checkpoint-6" / "run_log.json").read_text()) for r in (reference, resumed)]
    assert logs[1]["history"] == logs[0]["history"]


@pytest.mark.parametrize("probability, dropped", [(1.0, 32), (0.0, 0)])
def test_conditioning_dropout_one_trains_without_text(probability, dropped):
    """--conditioning_dropout_prob 1 is the unconditional baseline: the text encoder sees only the empty caption."""
    script = runpy.run_path(str(SCRIPT), run_name="train_text_to_image")
    seen = []

    def text_encoder(input_ids):
        seen.append(input_ids)
        return (torch.zeros(*input_ids.shape, 8),)

    def unet(noisy, timesteps, encoder_hidden_states):
        return argparse.Namespace(sample=torch.zeros_like(noisy))

    latents = argparse.Namespace(mean=torch.randn(32, 4, 2, 2), std=torch.ones(32, 4, 2, 2))
    text = argparse.Namespace(ids=torch.arange(1, 33)[:, None].repeat(1, 3), empty=torch.zeros(3, dtype=torch.long))
    args = argparse.Namespace(
        noise_offset=0.0, conditioning_dropout_prob=probability, prediction_type="epsilon", snr_gamma=None
    )
    script["denoising_loss"](
        unet,
        text_encoder,
        script["DDPMScheduler"](),
        latents,
        text,
        torch.arange(32),
        torch.Generator().manual_seed(0),
        args,
    )
    assert int((seen[0] == 0).all(dim=1).sum()) == dropped


def test_resumed_at_its_last_step_a_run_only_finishes(data, tmp_path, monkeypatch):
    """A long run cut short: its latest checkpoint, resumed with --max_train_steps at that step, is saved as it is."""
    run = tmp_path / "cut"
    train(command(data, run, *RESUME), monkeypatch)
    shutil.rmtree(run / "unet")
    train(
        command(data, run, *RESUME, "--max_train_steps", "6", "--resume_from_checkpoint", str(run / "checkpoint-6")),
        monkeypatch,
    )
    assert json.loads((run / "training_info.json").read_text())["steps"] == 6
    saved = load_file(run / "unet" / "diffusion_pytorch_model.safetensors")
    at_six = load_file(run / "checkpoint-6" / "model.safetensors")  # accelerate's save of the first prepared model
    assert all(torch.equal(saved[k], at_six[k]) for k in saved)


def test_two_cpu_processes_train_and_resume_bit_identical(data, tmp_path):
    out, resumed = tmp_path / "two", tmp_path / "two-resumed"
    args = [
        "--max_train_steps",
        "4",
        "--checkpointing_steps",
        "2",
        "--logging_steps",
        "1",
        "--train_batch_size",
        "4",
        "--use_ema",
    ]
    launch_two_cpu_processes(command(data, out, *args), script=SCRIPT)
    assert json.loads((out / "training_info.json").read_text())["num_processes"] == 2
    assert sorted(p.name for p in (out / "checkpoint-2").glob("random_states_*")) == [
        "random_states_0.pkl",
        "random_states_1.pkl",
    ]
    shutil.copytree(out / "checkpoint-2", resumed / "checkpoint-2")
    launch_two_cpu_processes(command(data, resumed, *args, "--resume_from_checkpoint", "latest"), script=SCRIPT)
    assert_bit_identical(out, resumed)


# ==================================================================================== bad input
BAD_CASES = {
    "missing caption column": (
        ["--caption_column", "text"],
        r"--caption_column 'text' is not a column; the columns are \['image', 'prompt_text'\]",
    ),
    "image as caption column": (["--caption_column", "image"], r"column 'image' holds Image.*not captions"),
    "vae of another class": (
        ["--pretrained_vae_model_name_or_path", "SPATIAL"],
        r"is a SpatialVAEModel, not an AutoencoderKL",
    ),
    "missing vae": (
        ["--pretrained_vae_model_name_or_path", "no/such/vae-folder"],
        r"cannot load --pretrained_vae_model_name_or_path 'no/such/vae-folder'",
    ),
    "text encoder not a CLIP folder": (
        ["--pretrained_text_encoder_model_name_or_path", "no/such/clip"],
        r"--pretrained_text_encoder_model_name_or_path: 'no/such/clip' holds no CLIP "
        r"text model with a tokenizer/ folder",
    ),
    "heads": (["--text_heads", "3"], r"--text_hidden_size \(32\) must be a multiple of --text_heads \(3\)"),
    "vocab": (["--tokenizer_vocab_size", "100"], r"--tokenizer_vocab_size must be at least 514"),
    "dropout": (["--conditioning_dropout_prob", "1.5"], r"--conditioning_dropout_prob must be in \[0, 1\], got 1.5"),
    "noise offset": (["--noise_offset", "-0.1"], r"--noise_offset must be non-negative"),
    "empty prompt": (["--validation_prompts", " "], r"--validation_prompts must not be empty strings"),
    "latents too small": (["--block_out_channels", "8", "8", "8", "8", "8"], r"the latents are 8×8, not divisible"),
    "batch larger than the data": (["--train_batch_size", "100"], r"fewer than one optimisation step"),
}


@pytest.mark.parametrize("name", BAD_CASES)
def test_bad_input_one_line_error_and_output_dir_untouched(name, data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    args, message = BAD_CASES[name]
    args = [data["spatial"] if a == "SPATIAL" else a for a in args]
    before = tree_hash(out)
    code, error = run_in_process(
        [*command(data, out, "--max_train_steps", "2"), *args], monkeypatch, capsys, script=SCRIPT
    )
    assert code == 2
    assert re.search(message, error), error
    assert tree_hash(out) == before


SHIPPED = REPO / "space" / "models" / "emoji-sd"


@pytest.mark.skipif(not (SHIPPED / "model_index.json").is_file(), reason="space/models/emoji-sd is not trained yet")
def test_the_shipped_emoji_sd_loads_without_vae_hub_and_meets_its_targets(tmp_path):
    """diffusers alone runs it (text to image, image to image, inpaint); its recorded evaluation at the recommended
    setting meets issue 25's targets; its card credits both emoji licences."""
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            ISOLATED.replace("(16, 16)", "(64, 64)")
            .replace("height=16, width=16", "height=64, width=64")
            .replace("(4, 4, 12, 12)", "(16, 16, 48, 48)"),
            str(SHIPPED),
            str(REPO),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shapes"] == [[1, 64, 64, 3]] * 4 and result["finite"] and not result["vae_hub_loaded"]
    metrics = json.loads((SHIPPED / "metrics.json").read_text())
    chosen = metrics["recommended_settings"]
    key = f"{chosen['scheduler'].lower()}_steps_{chosen['num_inference_steps']}_guidance_{chosen['guidance_scale']:g}"
    record = metrics["sample_quality"][key]
    assert record["num_samples"] == 756 and record["seed"] == 0
    assert record["r_precision"] >= 0.5 * record["r_precision_ceiling"]
    assert record["frechet_distance"] <= 2 * record["reconstruction_frechet_distance"]
    scheduler = json.loads((SHIPPED / "scheduler" / "scheduler_config.json").read_text())["_class_name"]
    assert scheduler == "DPMSolverMultistepScheduler" and chosen["scheduler"] == "DPM-Solver++"
    card = (SHIPPED / "README.md").read_text()
    assert "Twemoji (CC-BY 4.0" in card and "Apache-2.0" in card and "(recommended)" in card
