"""training/train_latent_diffusion.py end to end on tiny VAEs and datasets: the output folder is a loadable pipeline,
latents are encoded once, conditional and unconditional models, bit-identical resume (one and two CPU processes),
and one clear error for each bad input, before any work and with the output folder untouched.

Most runs are in-process (``runpy``, the script's real ``__main__``): they take a second or two instead of paying the
start-up of a new interpreter. The two-process run goes through ``accelerate launch`` as users run it.
"""

import json
import re
import runpy
import shutil
import sys
from pathlib import Path

import datasets
import PIL.Image
import pytest
import torch
import tqdm
from accelerate.state import AcceleratorState, GradientState
from datasets_util import CLASS_NAMES, make_images, png_bytes, write_hub_dataset, write_image_folder
from diffusers import AutoencoderKL, DDIMScheduler, DPMSolverMultistepScheduler
from hub_doubles import TOKEN, FakeHfApi
from safetensors.torch import load_file
from test_train import launch_two_cpu_processes, run_in_process, tree_hash

from vae_hub import LatentDiffusionPipeline, SpatialVAEModel, VAEModel, hub


REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "training" / "train_latent_diffusion.py"
UNET_WEIGHTS = Path("unet") / "diffusion_pytorch_model.safetensors"
SECRET = "hf_THIS_IS_NOT_A_REAL_TOKEN_456"
TINY = [
    "--block_out_channels",
    "8",
    "16",
    "--layers_per_block",
    "1",
    "--norm_num_groups",
    "4",
    "--attention_head_dim",
    "4",
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


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """Tiny datasets and VAEs of this module (written once), and a shared datasets cache."""
    root = tmp_path_factory.mktemp("ldm-data")
    torch.manual_seed(0)
    spatial = SpatialVAEModel(
        in_channels=1,
        sample_size=8,
        block_out_channels=(8, 8),
        latent_channels=4,
        norm_num_groups=4,
        scaling_factor=2.0,
    )  # 8×8 images ↔ 4×4×4 latents
    spatial.save_pretrained(root / "spatial-vae")
    kl = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 8),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=8,
        scaling_factor=1.0,
        shift_factor=0.1,
    )
    kl.save_pretrained(root / "rgb-autoencoder-kl")
    VAEModel(block_out_channels=(8, 16), norm_num_groups=4, latent_dim=4, sample_size=8).save_pretrained(
        root / "vector-vae"
    )
    return {
        "gray": str(write_hub_dataset(root / "gray", n_train=64, n_test=16, size=8)),
        "rgb_folder": str(write_image_folder(root / "rgb_folder", n=64, size=8, channels=3)),
        "many_classes": str(write_classes(root / "many", datasets.ClassLabel(num_classes=1001))),
        "case_classes": str(write_classes(root / "case", datasets.ClassLabel(names=["bag", "Bag"]))),
        "spatial": str(root / "spatial-vae"),
        "rgb_kl": str(root / "rgb-autoencoder-kl"),
        "vector": str(root / "vector-vae"),
        "cache": str(root / "cache"),
    }


def write_classes(root: Path, label: datasets.ClassLabel) -> Path:
    """A 16-image dataset whose ClassLabel column is ``label`` (labels 0 and 1)."""
    images, _ = make_images(16, 8)
    features = datasets.Features({"image": datasets.Image(), "label": label})
    table = datasets.Dataset.from_dict(
        {"image": [png_bytes(im) for im in images], "label": [i % 2 for i in range(16)]}, features=features
    )
    (root / "data").mkdir(parents=True)
    table.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    return root


def command(data: dict, out: Path, *args: str, dataset: str = "gray", vae: str = "spatial") -> list[str]:
    source = "--train_data_dir" if dataset == "rgb_folder" else "--dataset_name"
    return [
        source,
        data[dataset],
        "--pretrained_vae_model_name_or_path",
        data[vae],
        "--output_dir",
        str(out),
        "--cache_dir",
        data["cache"],
        *TINY,
        *args,
    ]


def train(argv: list[str], monkeypatch) -> None:
    """Run the script's ``__main__`` to the end in this process."""
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *argv])
    try:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        for bar in list(tqdm.tqdm._instances):
            bar.close()


def unet_weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / UNET_WEIGHTS)


def assert_bit_identical(a: Path, b: Path) -> None:
    wa, wb = unet_weights(a), unet_weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"tensors differ after resume: {different}"


# ==================================================================================== end to end
@pytest.fixture(scope="module")
def gray_run(data, tmp_path_factory) -> Path:
    """A class-conditional run on the spatial VAE, logging to tensorboard, with a token on the command line."""
    out = tmp_path_factory.mktemp("ldm-runs") / "gray"
    with pytest.MonkeyPatch.context() as monkeypatch:
        calls = []
        encode = SpatialVAEModel.encode
        monkeypatch.setattr(
            SpatialVAEModel, "encode", lambda self, x, *a, **k: calls.append(len(x)) or encode(self, x, *a, **k)
        )
        train(
            command(
                data,
                out,
                "--num_train_epochs",
                "2",
                "--validation_epochs",
                "1",
                "--encode_batch_size",
                "24",
                "--report_to",
                "tensorboard",
                "--hub_token",
                SECRET,
            ),
            monkeypatch,
        )
    (out / "encode_calls.json").write_text(json.dumps(calls))
    return out


def test_run_writes_a_loadable_pipeline(gray_run):
    expected = {
        "model_index.json",
        "pipeline.py",
        "vae",
        "unet",
        "scheduler",
        "samples.png",
        "loss_curve.png",
        "training_info.json",
        "metrics.json",
        "README.md",
        "logs",
        "encode_calls.json",
    }
    assert {p.name for p in gray_run.iterdir()} == expected
    pipe = LatentDiffusionPipeline.from_pretrained(gray_run)
    assert type(pipe.vae) is SpatialVAEModel and pipe.class_names == list(CLASS_NAMES)
    assert isinstance(pipe.scheduler, DPMSolverMultistepScheduler) and pipe.scheduler.config.num_train_timesteps == 100
    assert pipe.unet.config.num_class_embeds == len(CLASS_NAMES) + 1 and pipe.unet.config.sample_size == 4
    pipe.set_progress_bar_config(disable=True)
    images = pipe("two", num_images_per_class=2, num_inference_steps=2, output_type="pt").images
    assert images.shape == (2, 1, 8, 8)
    with PIL.Image.open(
        gray_run / "samples.png"
    ) as grid:  # a row per class, --num_validation_images per row, 2× enlarged
        assert grid.size == (2 * (2 * 10 + 2), 2 * (4 * 10 + 2))


def test_training_record(gray_run):
    info = json.loads((gray_run / "training_info.json").read_text())
    assert (info["steps"], info["epochs"], info["num_processes"], info["num_train_images"]) == (16, 2, 1, 64)
    assert (info["class_column"], info["class_names"], info["latent_shape"]) == ("label", list(CLASS_NAMES), [4, 4, 4])
    assert info["steps_per_second"] > 0 and info["train_images_per_second"] > 0 and info["unet_parameters"] > 0
    assert info["inference_scheduler"] == "DPMSolverMultistepScheduler"
    assert "hub_token" not in info["args"] and "--hub_token '***'" in info["command"]
    assert json.loads((gray_run / "metrics.json").read_text())["final_train_loss"] > 0
    assert list((gray_run / "logs").rglob("events.out.tfevents.*")), "nothing logged to tensorboard"
    assert "from_pretrained" in (gray_run / "README.md").read_text()


def test_latents_are_encoded_once_in_batches(gray_run):
    # one probe of the resolution, then the 64 training images in batches of 24; none during the 2 epochs
    assert json.loads((gray_run / "encode_calls.json").read_text()) == [1, 24, 24, 16]


def test_token_is_in_no_output_file(gray_run):
    for path in gray_run.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"the token leaked into {path.relative_to(gray_run)}"


def test_push_uploads_the_pipeline_without_checkpoints_or_logs(gray_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(gray_run, folder)
    (folder / "checkpoint-4").mkdir()
    (folder / "checkpoint-4" / "model.safetensors").write_bytes(b"state")
    api = FakeHfApi()
    hub.push_to_hub(folder, "someone/tiny-ldm", private=True, token=TOKEN, api=api)  # what --push_to_hub calls
    assert api.repos == {("model", "someone/tiny-ldm"): True}
    (commit,) = api.commits
    assert commit["token"] == TOKEN and "model_index.json" in commit["files"]
    assert {"unet/diffusion_pytorch_model.safetensors", "vae/config.json", "pipeline.py", "samples.png"} <= set(
        commit["files"]
    )
    assert not [name for name in commit["files"] if name.startswith(("checkpoint-", "logs/"))]
    assert "library_name: diffusers" in commit["files"]["README.md"].decode()  # the card builder's card


def test_unconditional_v_prediction_min_snr_ema_ddim_on_an_rgb_autoencoder_kl(data, tmp_path, monkeypatch):
    out = tmp_path / "rgb"
    train(
        command(
            data,
            out,
            "--class_column",
            "none",
            "--prediction_type",
            "v_prediction",
            "--snr_gamma",
            "5",
            "--use_ema",
            "--inference_scheduler",
            "ddim",
            "--max_train_steps",
            "5",
            "--mixed_precision",
            "bf16",
            dataset="rgb_folder",
            vae="rgb_kl",
        ),
        monkeypatch,
    )
    pipe = LatentDiffusionPipeline.from_pretrained(out)
    assert type(pipe.vae) is AutoencoderKL and pipe.unet.config.num_class_embeds is None and pipe.class_names == []
    assert isinstance(pipe.scheduler, DDIMScheduler) and pipe.scheduler.config.prediction_type == "v_prediction"
    assert pipe.scheduler.config.clip_sample is False  # latents are not images in [-1, 1]
    assert {t.dtype for t in unet_weights(out).values()} == {torch.float32}  # autocast only
    info = json.loads((out / "training_info.json").read_text())
    assert info["class_column"] is None and info["steps"] == 5
    pipe.set_progress_bar_config(disable=True)
    assert pipe(num_images_per_class=3, num_inference_steps=2, output_type="pt").images.shape == (3, 3, 8, 8)


# ==================================================================================== resume
RESUME = [
    "--validation_epochs",
    "100",
    "--logging_steps",
    "1",
    "--max_train_steps",
    "10",
    "--checkpointing_steps",
    "3",
]


@pytest.mark.parametrize(
    "extra",
    [[], ["--use_ema", "--gradient_accumulation_steps", "2", "--snr_gamma", "5"]],
    ids=["plain", "ema-accumulation-snr"],
)
def test_resume_mid_epoch_is_bit_identical(data, tmp_path, monkeypatch, extra):
    """Resume from an early mid-epoch checkpoint of a finished run: the same UNet weights as the run itself."""
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    train(command(data, reference, *RESUME, *extra), monkeypatch)
    shutil.copytree(reference / "checkpoint-3", resumed / "checkpoint-3")
    train(command(data, resumed, *RESUME, *extra, "--resume_from_checkpoint", "latest"), monkeypatch)
    assert json.loads((resumed / "training_info.json").read_text())["steps"] == 10
    assert_bit_identical(reference, resumed)
    # the whole run's log: the loss history from step 1 (also before the resume), the wall time of both parts
    logs = [json.loads((run / "checkpoint-9" / "run_log.json").read_text()) for run in (reference, resumed)]
    assert [h["step"] for h in logs[0]["history"]] == list(range(1, 10))
    assert logs[1]["history"] == logs[0]["history"]
    before = json.loads((reference / "checkpoint-3" / "run_log.json").read_text())["wall_time_seconds"]
    assert json.loads((resumed / "training_info.json").read_text())["wall_time_seconds"] > before > 0


def test_two_cpu_processes_train_and_resume_bit_identical(data, tmp_path):
    out, resumed = tmp_path / "two", tmp_path / "two-resumed"
    args = ["--max_train_steps", "4", "--checkpointing_steps", "2", "--logging_steps", "1"]
    launch_two_cpu_processes(command(data, out, *args), script=SCRIPT)
    info = json.loads((out / "training_info.json").read_text())
    assert info["num_processes"] == 2 and info["steps"] == 4
    assert sorted(p.name for p in (out / "checkpoint-2").glob("random_states_*")) == [
        "random_states_0.pkl",
        "random_states_1.pkl",
    ]
    LatentDiffusionPipeline.from_pretrained(out)
    shutil.copytree(out / "checkpoint-2", resumed / "checkpoint-2")
    launch_two_cpu_processes(command(data, resumed, *args, "--resume_from_checkpoint", "latest"), script=SCRIPT)
    assert_bit_identical(out, resumed)


# ==================================================================================== bad input
BAD_CASES = {
    "vector vae": ({"vae": "vector"}, [], r"is a VAEModel \(a vector-latent VAE.*\), not a spatial VAE"),
    "missing vae": (
        {},
        ["--pretrained_vae_model_name_or_path", "no/such/vae-folder"],
        r"cannot load --pretrained_vae_model_name_or_path 'no/such/vae-folder'",
    ),
    "resolution": ({}, ["--resolution", "16"], r"the VAE does not take 16×16 images"),
    "channels": (
        {"dataset": "rgb_folder"},
        [],
        r"the dataset's images are RGB \(3 channel\(s\)\) but the VAE takes 1-channel",
    ),
    "too many classes": ({"dataset": "many_classes"}, [], r"column 'label' has 1001 classes, more than 1000"),
    "class names differing in case": (
        {"dataset": "case_classes"},
        [],
        r"column 'label' has class names that differ only in case: \['bag', 'Bag'\]",
    ),
    "missing class column": (
        {},
        ["--class_column", "kind"],
        r"--class_column 'kind' is not a column; the columns are",
    ),
    "image as class column": (
        {},
        ["--class_column", "image"],
        r"column 'image' holds Image.*not integer class labels",
    ),
    "latents too small for the unet": (
        {},
        ["--block_out_channels", "8", "8", "8", "8"],
        r"the latents are 4×4, not divisible by the UNet's downsampling \(8×\)",
    ),
    "bad unet config": ({}, ["--norm_num_groups", "3"], r"bad UNet config"),
    "attention level": ({}, ["--attention_levels", "2"], r"--attention_levels must be in 0..1"),
    "dropout": (
        {},
        ["--conditioning_dropout_prob", "1.5"],
        r"--conditioning_dropout_prob must be in \[0, 1\], got 1.5",
    ),
    "snr gamma": ({}, ["--snr_gamma", "0"], r"--snr_gamma must be positive, got 0.0"),
    "guidance": ({}, ["--guidance_scale", "-1"], r"--guidance_scale must be non-negative, got -1.0"),
    "learning rate typo": ({}, ["--learning_rate", "1e3"], r"--learning_rate must be in \(0, 1\], got 1000.0"),
    "abbreviated token flag": ({}, ["--hub_tok", "abc"], r"unrecognized arguments: --hub_tok abc"),
    "fp16 on cpu": ({}, ["--mixed_precision", "fp16"], r"fp16 needs a GPU"),
    "batch larger than the data": ({}, ["--train_batch_size", "100"], r"fewer than one optimisation step"),
}


@pytest.mark.parametrize("name", [*BAD_CASES, "another run's pipeline"])
def test_bad_input_one_line_error_before_training_and_output_dir_untouched(name, data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    if name == "another run's pipeline":
        (out / "model_index.json").write_text("{}")
        select, args, message = {}, [], r"already holds a trained model; pass --overwrite_output_dir"
    else:
        select, args, message = BAD_CASES[name]
    before = tree_hash(out)
    code, error = run_in_process(
        [*command(data, out, "--max_train_steps", "2", **select), *args], monkeypatch, capsys, script=SCRIPT
    )
    assert code == 2
    assert re.search(message, error), error
    assert tree_hash(out) == before
