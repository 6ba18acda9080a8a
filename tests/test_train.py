"""training/train_vae.py end to end: data layouts, the output folder, fine-tuning, bit-identical resume after a kill,
two real CPU processes (and a NaN on one of them), and one clear error for each bad input.

Runs use a tiny model on 8×8–12×12 images. Training runs go through a subprocess (the script's real entry point,
one thread each: the resume comparisons need the same thread count on both sides); the bad-input cases stop before
or right at the start of training, so they run in-process through ``runpy`` to save the start-up time. Every
subprocess has a timeout so that a hang fails the test instead of blocking CI.
"""

import hashlib
import importlib.util
import json
import os
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import tqdm
from accelerate.state import AcceleratorState, GradientState
from datasets_util import CLASS_NAMES, write_hub_dataset, write_image_folder
from safetensors.torch import load_file
from tiny import tiny_vae

from vae_hub import SpatialVAEModel, VAEModel
from vae_hub.explore import MapSample


REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "training" / "train_vae.py"
TIMEOUT = 300  # seconds; only there to turn a hang into a failure
WEIGHTS = "diffusion_pytorch_model.safetensors"
SECRET = "hf_THIS_IS_NOT_A_REAL_TOKEN_123"
TINY = [
    "--block_out_channels",
    "8",
    "16",
    "--norm_num_groups",
    "4",
    "--latent_dim",
    "4",
    "--train_batch_size",
    "8",
    "--eval_iw_samples",
    "2",
    "--prior_components",
    "2",
    "--lr_warmup_steps",
    "2",
    "--kl_warmup_steps",
    "5",
]


def load_script():
    """train_vae.py as a module (for its small helpers)."""
    spec = importlib.util.spec_from_file_location("train_vae", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script_env(**extra) -> dict:
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        "PYTHONPATH": python_path,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        **extra,
    }


def train_command(out: Path, data: list[str], *args: str, cache: Path) -> list[str]:
    return [*data, "--output_dir", str(out), "--cache_dir", str(cache), *TINY, *args]


def run_script(argv: list[str], *, prefix: list[str] | None = None, env: dict | None = None, check: bool = True):
    """Run ``python SCRIPT argv`` (or ``python *prefix argv``) to the end; returns the CompletedProcess."""
    command = [sys.executable, *(prefix or [str(SCRIPT)]), *argv]
    done = subprocess.run(command, env=env or script_env(), cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
    if check:
        assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-4000:]}"
    return done


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / WEIGHTS)


def assert_bit_identical(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"tensors differ after resume: {different}"


def assert_same_run_log(reference: Path, resumed: Path, resumed_from: str, last: str) -> None:
    """The resumed run's last checkpoint holds the uninterrupted run's whole loss history (the steps before the resume
    too), and its wall time counts the part before the resume."""
    logs = [json.loads((run / last / "run_log.json").read_text()) for run in (reference, resumed)]
    assert [h["step"] for h in logs[0]["history"]] == list(range(1, int(last.split("-")[1]) + 1))
    assert logs[1]["history"] == logs[0]["history"]
    before = json.loads((reference / resumed_from / "run_log.json").read_text())["wall_time_seconds"]
    assert logs[1]["wall_time_seconds"] > before > 0


def tiny_model(sample_size: int = 8) -> VAEModel:
    return tiny_vae(sample_size=sample_size)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """The tiny datasets of this module (written once) and a shared datasets cache."""
    root = tmp_path_factory.mktemp("data")
    return {
        "gray": ["--dataset_name", str(write_hub_dataset(root / "gray", n_train=64, n_test=16, size=8))],
        "rgb_folder": ["--train_data_dir", str(write_image_folder(root / "rgb_folder", n=64, size=12, channels=3))],
        "img_rgb_no_test": [
            "--dataset_name",
            str(
                write_hub_dataset(
                    root / "img", n_train=72, n_test=None, size=10, channels=3, image_column="img", readme=False
                )
            ),
        ],
        "cache": root / "cache",
    }


# ==================================================================================== end to end
@pytest.fixture(scope="module")
def gray_run(data, tmp_path_factory) -> Path:
    """One run on the Hub-layout grayscale dataset, logging to tensorboard, with a token on the command line."""
    out = tmp_path_factory.mktemp("runs") / "gray"
    run_script(
        train_command(
            out,
            data["gray"],
            "--num_train_epochs",
            "2",
            "--report_to",
            "tensorboard",
            "--hub_token",
            SECRET,
            cache=data["cache"],
        )
    )
    return out


def test_run_writes_a_complete_model_folder(gray_run):
    for name in (
        "config.json",
        WEIGHTS,
        "README.md",
        "metrics.json",
        "training_info.json",
        "samples.png",
        "mixture_samples.png",  # its prior has 2 components
        "reconstructions.png",
        "loss_curve.png",
        "latent_map_sample.npz",
    ):
        assert (gray_run / name).is_file(), name
    modes = {p.name: p.stat().st_mode & 0o777 for p in gray_run.iterdir() if p.is_file()}
    assert len(set(modes.values())) == 1, modes  # the weights too (safetensors writes them 0600)
    sample = MapSample.load(gray_run / "latent_map_sample.npz")  # the Space's latent map of this model: its own data
    assert sample.images.shape == (16, 1, 8, 8) and sample.class_names == list(CLASS_NAMES)
    model = VAEModel.from_pretrained(gray_run)
    assert (model.config.in_channels, model.config.sample_size, model.config.prior_components) == (1, 8, 2)
    assert model.generate(2, generator=torch.Generator().manual_seed(0)).shape == (2, 1, 8, 8)

    metrics = json.loads((gray_run / "metrics.json").read_text())
    assert (metrics["split"], metrics["num_images"], metrics["iw_samples"]) == ("test", 16, 2)
    info = json.loads((gray_run / "training_info.json").read_text())
    assert info["num_processes"] == 1 and info["steps"] == 16 and info["epochs"] == 2
    assert (info["image_column"], info["label_column"], info["num_train_images"]) == ("image", "label", 64)
    assert info["train_images_per_second"] > 0 and info["base_model"] is None
    assert "hub_token" not in info["args"] and "--hub_token '***'" in info["command"]
    assert info["args"]["resolution"] is None and info["args"]["block_out_channels"] == [8, 16]
    assert list((gray_run / "logs").rglob("events.out.tfevents.*")), "nothing logged to tensorboard"


def test_token_is_in_no_output_file(gray_run):
    for path in gray_run.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"the token leaked into {path.relative_to(gray_run)}"


def test_fine_tune_from_the_produced_folder(gray_run, data, tmp_path):
    """No model flags (their defaults describe another architecture), the default warm-up (longer than the run) and
    the default mixture prior (the pretrained model's K, refitted: no search): the record, the messages and the card
    say what really happened."""
    out = tmp_path / "tuned"
    done = run_script(
        [
            *data["gray"],
            "--output_dir",
            str(out),
            "--cache_dir",
            str(data["cache"]),
            "--pretrained_model_name_or_path",
            str(gray_run),
            "--train_batch_size",
            "8",
            "--eval_iw_samples",
            "2",
            "--max_train_steps",
            "30",
            "--report_to",
            "none",
        ]
    )
    info = json.loads((out / "training_info.json").read_text())
    assert info["base_model"] == str(gray_run) and info["steps"] == 30
    base, tuned = VAEModel.from_pretrained(gray_run), VAEModel.from_pretrained(out)
    assert tuned.config.block_out_channels == base.config.block_out_channels
    assert not torch.equal(weights(gray_run)["encoder.conv_in.weight"], weights(out)["encoder.conv_in.weight"])
    # the record holds the fine-tuned model's architecture, not the flags' defaults (latent 16, channels [32, 64])
    assert (info["args"]["latent_dim"], info["args"]["block_out_channels"]) == (4, [8, 16])
    assert info["architecture"]["latent_dim"] == 4 and info["architecture"]["block_out_channels"] == [8, 16]
    # the default warm-up (200 steps) is longer than the 30-step run: said, and shortened to a tenth of the run
    assert (
        "warning: --lr_warmup_steps 200 is not shorter than the run (30 steps): warming up over 3 steps" in done.stdout
    )
    assert info["args"]["lr_warmup_steps"] == 3
    # the start-of-run summary and the last line
    for start in ("data: ", "model: fine-tuning ", "steps: 30 (", "then: mixture prior (2)", "writes: "):
        assert any(line.startswith(start) for line in done.stdout.splitlines()), start
    assert "model: fine-tuning" in done.stdout and "4-D latent, channels [8, 16]" in done.stdout
    assert re.search(r"evaluation: 16 images × k=2 in \d+ s, \d+% of this run", done.stdout)
    assert done.stdout.strip().splitlines()[-1].startswith(f"saved to {out.resolve()}: the model")
    # the mixture prior keeps the pretrained model's size (a few steps do not buy a search), and says so
    assert "mixture prior: K = 2, the pretrained model's, refitted to the new codes" in done.stdout
    assert info["mixture_prior"]["method"] == "given" and tuned.config.prior_components == 2
    assert "K = 2 components" in (out / "README.md").read_text()
    # the recorded wall time counts the whole run: the loop, then the scale, the prior and the evaluation
    assert 0 < info["training_loop_seconds"] <= info["wall_time_seconds"]


SPATIAL = [
    "--model_type",
    "spatial",
    "--block_out_channels",
    "8",
    "16",
    "--norm_num_groups",
    "4",
    "--latent_channels",
    "2",
    "--train_batch_size",
    "8",
    "--eval_iw_samples",
    "2",
    "--lr_warmup_steps",
    "2",
]


@pytest.fixture(scope="module")
def spatial_run(data, tmp_path_factory) -> Path:
    """A SpatialVAEModel trained on the RGB image folder (12×12 → padded to 16×16 → 2×8×8 latents)."""
    out = tmp_path_factory.mktemp("runs") / "spatial"
    run_script(
        [
            *data["rgb_folder"],
            "--output_dir",
            str(out),
            "--cache_dir",
            str(data["cache"]),
            *SPATIAL,
            "--num_train_epochs",
            "2",
            "--report_to",
            "none",
        ]
    )
    return out


def test_spatial_run_writes_a_spatial_model_folder(spatial_run):
    for name in (
        "config.json",
        WEIGHTS,
        "README.md",
        "metrics.json",
        "training_info.json",
        "reconstructions.png",
        "latents.png",
        "loss_curve.png",
    ):
        assert (spatial_run / name).is_file(), name
    assert not (spatial_run / "samples.png").exists()  # decoded noise is no sample of a spatial autoencoder
    model = SpatialVAEModel.from_pretrained(spatial_run)
    assert (model.config.in_channels, model.config.sample_size, model.latent_shape) == (3, 12, (2, 8, 8))
    assert model.config.scaling_factor != 1.0  # measured at the end of training
    info = json.loads((spatial_run / "training_info.json").read_text())
    assert info["args"]["model_type"] == "spatial" and info["args"]["beta"] == 1e-4
    latents = json.loads((spatial_run / "metrics.json").read_text())["latents"]
    assert latents["scaling_factor"] == model.config.scaling_factor and latents["shape"] == [2, 8, 8]
    assert len(latents["channel_std"]) == 2
    card = (spatial_run / "README.md").read_text()
    assert "SpatialVAEModel.from_pretrained" in card and "2×8×8" in card and "latents.png" in card
    active = json.loads((spatial_run / "metrics.json").read_text())["active_units"]
    assert f"Active latent elements: {active} of 128 " in card  # 2×8×8 elements


def test_fine_tune_takes_the_model_type_from_the_folder(spatial_run, data, tmp_path):
    out = tmp_path / "tuned"
    run_script(
        [
            *data["rgb_folder"],
            "--output_dir",
            str(out),
            "--cache_dir",
            str(data["cache"]),
            "--pretrained_model_name_or_path",
            str(spatial_run),
            "--max_train_steps",
            "2",
            "--report_to",
            "none",
            "--train_batch_size",
            "8",
            "--eval_iw_samples",
            "2",
        ]
    )
    assert json.loads((out / "training_info.json").read_text())["args"]["model_type"] == "spatial"
    assert SpatialVAEModel.from_pretrained(out).latent_shape == (2, 8, 8)


def test_decoder_only_fine_tune_keeps_the_encoder_its_latents_and_scale_bit_exact(spatial_run, data, tmp_path):
    """--train_decoder_only (with EMA): the encoder's weights, so the latents a diffusion model learned, and the
    scaling factor are the pretrained model's, bit for bit; the decoder is trained."""
    out = tmp_path / "decoder"
    done = run_script(
        [
            *data["rgb_folder"],
            "--output_dir",
            str(out),
            "--cache_dir",
            str(data["cache"]),
            "--pretrained_model_name_or_path",
            str(spatial_run),
            "--train_decoder_only",
            "--use_ema",
            "--ema_decay",
            "0.5",
            "--max_train_steps",
            "4",
            "--lr_warmup_steps",
            "1",
            "--report_to",
            "none",
            "--train_batch_size",
            "8",
            "--eval_iw_samples",
            "2",
        ]
    )
    assert "(its decoder only: the encoder is frozen)" in done.stdout
    base, tuned = SpatialVAEModel.from_pretrained(spatial_run), SpatialVAEModel.from_pretrained(out)
    encoder = "encoder."
    before, after = weights(spatial_run), weights(out)
    assert {k for k in before if k.startswith(encoder)} and before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]) == key.startswith(encoder), key
    assert tuned.config.scaling_factor == base.config.scaling_factor
    x = torch.rand(2, 3, 12, 12) * 2 - 1
    with torch.no_grad():
        assert torch.equal(base.encode(x).latent_dist.mean, tuned.encode(x).latent_dist.mean)


def test_a_new_wider_decoder_learns_on_the_pretrained_encoder_and_its_latents(spatial_run, data, tmp_path):
    """--train_decoder_only --up_block_out_channels: the encoder and scaling factor copied bit for bit, a new decoder
    of the asked width trained (AsymmetricAutoencoderKL's idea), so a pipeline on these latents keeps working."""
    out = tmp_path / "wide"
    done = run_script(
        [
            *data["rgb_folder"],
            "--output_dir",
            str(out),
            "--cache_dir",
            str(data["cache"]),
            "--pretrained_model_name_or_path",
            str(spatial_run),
            "--train_decoder_only",
            "--up_block_out_channels",
            "16",
            "16",
            "--layers_per_up_block",
            "2",
            "--max_train_steps",
            "3",
            "--lr_warmup_steps",
            "1",
            "--report_to",
            "none",
            "--train_batch_size",
            "8",
            "--eval_iw_samples",
            "2",
        ]
    )
    assert "decoder [16, 16] × 2 block(s)" in done.stdout
    base, wide = SpatialVAEModel.from_pretrained(spatial_run), SpatialVAEModel.from_pretrained(out)
    assert base.config.block_out_channels == wide.config.block_out_channels == [8, 16]
    assert (wide.config.up_block_out_channels, wide.config.layers_per_up_block) == ([16, 16], 2)
    assert wide.config.scaling_factor == base.config.scaling_factor
    before, after = weights(spatial_run), weights(out)
    encoder = {k for k in before if k.startswith("encoder.")}
    assert encoder and all(torch.equal(before[k], after[k]) for k in encoder)
    assert after["decoder.conv_out.weight"].shape[1] == 16 != before["decoder.conv_out.weight"].shape[1]
    assert len(after) > len(before)  # two blocks per decoder stage
    x = torch.rand(2, 3, 12, 12) * 2 - 1
    with torch.no_grad():
        assert torch.equal(base.encode(x).latent_dist.mean, wide.encode(x).latent_dist.mean)
    info = json.loads((out / "training_info.json").read_text())
    assert info["args"]["up_block_out_channels"] == [16, 16] and info["architecture"]["layers_per_up_block"] == 2
    card = (out / "README.md").read_text()
    assert "its decoder only: the encoder and its latents are that model's" in card and "decoder [16, 16] × 2" in card


def test_decoder_only_fine_tune_of_a_vector_model_keeps_its_prior(gray_run, data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "decoder"
    run_script(
        [
            *data["gray"],
            "--output_dir",
            str(out),
            "--cache_dir",
            str(data["cache"]),
            "--train_batch_size",
            "8",
            "--pretrained_model_name_or_path",
            str(gray_run),
            "--train_decoder_only",
            "--max_train_steps",
            "3",
            "--lr_warmup_steps",
            "1",
            "--eval_iw_samples",
            "2",
            "--report_to",
            "none",
        ]
    )
    before, after = weights(gray_run), weights(out)
    assert [k for k in before if k.startswith("prior")] and all(
        torch.equal(before[k], after[k])
        for k in before
        if k.startswith(("prior", "encoder.to_moments", "encoder.down_blocks"))
    )
    assert not torch.equal(before["decoder.conv_out.weight"], after["decoder.conv_out.weight"])
    code, error = run_in_process(
        [
            *data["gray"],
            "--output_dir",
            str(tmp_path / "refit"),
            "--cache_dir",
            str(data["cache"]),
            "--pretrained_model_name_or_path",
            str(gray_run),
            "--train_decoder_only",
            "--prior_components",
            "3",
        ],
        monkeypatch,
        capsys,
    )
    assert code == 2 and "with --train_decoder_only the codes do not change" in error
    assert not (tmp_path / "refit").exists()


def test_image_folder_rgb_resized_bf16_over_an_old_run(data, tmp_path):
    """An RGB image folder, resized to --resolution, bf16 autocast, into the folder of an older run."""
    out = tmp_path / "folder"
    tiny_model(sample_size=12).save_pretrained(out)
    (out / "checkpoint-99").mkdir()
    run_script(
        train_command(
            out,
            data["rgb_folder"],
            "--resolution",
            "8",
            "--max_train_steps",
            "4",
            "--validation_split",
            "0.25",
            "--mixed_precision",
            "bf16",
            "--overwrite_output_dir",
            "--report_to",
            "none",
            cache=data["cache"],
        )
    )
    assert not (out / "checkpoint-99").exists(), "the old run's checkpoint would be resumed by 'latest'"
    model = VAEModel.from_pretrained(out)
    assert (model.config.in_channels, model.config.sample_size) == (3, 8)
    assert {t.dtype for t in weights(out).values()} == {torch.float32}  # autocast only: weights stay fp32
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["split"], metrics["num_images"]) == ("train[0.25 held out]", 16)
    assert json.loads((out / "training_info.json").read_text())["num_train_images"] == 48


def test_other_image_column_no_test_split_streamed(data, tmp_path):
    """Image column ``img``, default layout without README, no test split, and the streaming (not in-memory) path."""
    out = tmp_path / "streamed"
    run_script(
        train_command(
            out,
            data["img_rgb_no_test"],
            "--max_in_memory_mb",
            "0",
            "--dataloader_num_workers",
            "1",
            "--max_train_steps",
            "9",
            "--report_to",
            "none",
            cache=data["cache"],
        )
    )
    info = json.loads((out / "training_info.json").read_text())
    assert (info["image_column"], info["num_train_images"], info["steps"]) == ("img", 64, 9)
    model = VAEModel.from_pretrained(out)
    assert (model.config.in_channels, model.config.sample_size) == (3, 10)
    assert json.loads((out / "metrics.json").read_text())["split"] == "train[0.1 held out]"


# ==================================================================================== resume
RESUME_ARGS = ["--report_to", "none", "--validation_epochs", "100", "--logging_steps", "1"]


def test_killed_run_resumes_to_bit_identical_weights(data, tmp_path):
    args = [*RESUME_ARGS, "--max_train_steps", "40", "--checkpointing_steps", "4"]
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    # "latest" with nothing to resume is a new run (a job script can always pass it): the reference itself
    started = run_script(
        train_command(reference, data["gray"], *args, "--resume_from_checkpoint", "latest", cache=data["cache"])
    )
    assert "No checkpoint in" in started.stdout and "Resuming from" not in started.stdout

    # Start the same run, SIGKILL it as soon as its first checkpoint is complete.
    command = [sys.executable, str(SCRIPT), *train_command(interrupted, data["gray"], *args, cache=data["cache"])]
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen(command, env=script_env(), cwd=REPO, stdout=log, stderr=log)
        deadline = time.monotonic() + TIMEOUT
        while process.poll() is None and not (interrupted / "checkpoint-4").is_dir():
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(TIMEOUT)
    assert process.returncode in (0, -signal.SIGKILL), (tmp_path / "killed.log").read_text()[-3000:]
    if process.returncode == 0:  # finished before the kill: resume from the first checkpoint instead
        for path in interrupted.iterdir():
            if path.name != "checkpoint-4":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert not (interrupted / WEIGHTS).exists() and (interrupted / "checkpoint-4").is_dir()
    # A half-written checkpoint with a higher step (as a kill during save leaves it) must never be picked.
    (interrupted / "checkpoint-36.partial").mkdir(exist_ok=True)
    (interrupted / "checkpoint-36.partial" / "model.safetensors").write_bytes(b"half")

    resumed = run_script(
        train_command(interrupted, data["gray"], *args, "--resume_from_checkpoint", "latest", cache=data["cache"])
    )
    assert "Resuming from" in resumed.stdout and "checkpoint-36.partial" not in resumed.stdout
    assert load_script().latest_checkpoint(interrupted).name == "checkpoint-40"
    assert_bit_identical(reference, interrupted)


@pytest.mark.parametrize(
    "extra, checkpoint",
    [(["--use_ema", "--ema_decay", "0.9"], "checkpoint-3"), (["--gradient_accumulation_steps", "2"], "checkpoint-3")],
    ids=["ema", "accumulation"],
)
def test_resume_mid_epoch_is_bit_identical(data, tmp_path, extra, checkpoint):
    """Resume from an early mid-epoch checkpoint of a finished run: same weights as the run itself."""
    args = [*RESUME_ARGS, *extra, "--max_train_steps", "10", "--checkpointing_steps", "3"]
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    run_script(train_command(reference, data["gray"], *args, cache=data["cache"]))
    shutil.copytree(reference / checkpoint, resumed / checkpoint)
    run_script(train_command(resumed, data["gray"], *args, "--resume_from_checkpoint", "latest", cache=data["cache"]))
    assert_bit_identical(reference, resumed)
    assert_same_run_log(reference, resumed, checkpoint, "checkpoint-9")


def test_adversarial_term_resumes_bit_identical_and_stays_out_of_the_model(data, tmp_path):
    """The PatchGAN and its optimizer are training state (checkpoints), never part of the saved model."""
    args = [
        *data["rgb_folder"],
        "--cache_dir",
        str(data["cache"]),
        *SPATIAL,
        "--disc_weight",
        "0.5",
        "--disc_start",
        "2",
        "--max_train_steps",
        "8",
        "--checkpointing_steps",
        "4",
        "--logging_steps",
        "2",
        "--report_to",
        "none",
        "--eval_iw_samples",
        "1",
    ]
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    run_script([*args, "--output_dir", str(reference)])
    shutil.copytree(reference / "checkpoint-4", resumed / "checkpoint-4")
    run_script([*args, "--output_dir", str(resumed), "--resume_from_checkpoint", "latest"])
    assert_bit_identical(reference, resumed)
    disc_before, disc_after = (load_file(reference / f"checkpoint-{s}" / "model_1.safetensors") for s in (4, 8))
    assert any(not torch.equal(disc_before[k], disc_after[k]) for k in disc_after), "the discriminator never trained"
    SpatialVAEModel.from_pretrained(reference)  # strict: a discriminator key in the model would be refused


def test_latest_checkpoint_skips_partial_and_foreign_folders(tmp_path):
    script = load_script()
    for name in ("checkpoint-2", "checkpoint-10", "checkpoint-12.partial", "checkpoint-best"):
        (tmp_path / name).mkdir()
    (tmp_path / "checkpoint-20").write_text("a file, not a checkpoint")
    assert script.latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    assert script.latest_checkpoint(tmp_path / "checkpoint-2") is None


def test_run_log_round_trips_and_an_older_checkpoint_resumes_without_one(tmp_path):
    RunLog = load_script().RunLog
    run_log = RunLog()
    run_log.append(1, {"loss": 0.5, "lr": 1e-3})
    run_log.earlier_seconds = 100.0
    run_log.save(tmp_path)
    resumed = RunLog.resume(tmp_path)
    assert resumed.history == [{"step": 1, "loss": 0.5, "lr": 1e-3}] and resumed.wall_time >= 100.0
    older = tmp_path / "older"  # a checkpoint written before run logs existed: this part's log only
    older.mkdir()
    from_older = RunLog.resume(older)
    assert from_older.history == [] and from_older.wall_time < 100


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        load_script().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in (
        "--train_batch_size TRAIN_BATCH_SIZE Per process. (default: 128)",
        "--lr_warmup_steps LR_WARMUP_STEPS (default: 200)",
        "Left out: a fine-tuned model's own K, else auto",
        "--learning_rate LEARNING_RATE (default: 0.001)",
    ):
        assert shown in text, shown


def test_redact_hides_secret_values():
    redact = load_script().redact
    assert redact(["--hub_token", "abc", "--seed", "1", "--hub_token=xyz"]) == [
        "--hub_token",
        "***",
        "--seed",
        "1",
        "--hub_token=***",
    ]


# ==================================================================================== two CPU processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two_cpu_processes(argv: list[str], script: Path = SCRIPT, check: bool = True):
    prefix = [
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        str(script),
    ]
    return run_script(argv, prefix=prefix, env=script_env(ACCELERATE_USE_CPU="1"), check=check)


def test_two_cpu_processes_train_and_resume_bit_identical(data, tmp_path):
    out, resumed = tmp_path / "two", tmp_path / "two-resumed"
    args = [
        "--max_train_steps",
        "6",
        "--checkpointing_steps",
        "2",
        "--report_to",
        "tensorboard",
        "--logging_steps",
        "1",
    ]
    launch_two_cpu_processes(train_command(out, data["gray"], *args, cache=data["cache"]))

    info = json.loads((out / "training_info.json").read_text())
    assert info["num_processes"] == 2 and info["steps"] == 6
    # Each process saved its RNG state in the checkpoint (proof of two ranks) ...
    assert sorted(p.name for p in (out / "checkpoint-2").glob("random_states_*")) == [
        "random_states_0.pkl",
        "random_states_1.pkl",
    ]
    # ... but only the main process wrote logs (tensorboard names its files after the writing process id).
    writers = {p.name.split(".")[-2] for p in (out / "logs").rglob("events.out.tfevents.*")}
    assert len(writers) == 1, f"tensorboard files from several processes: {writers}"
    expected = {
        "config.json",
        WEIGHTS,
        "README.md",
        "metrics.json",
        "training_info.json",
        "samples.png",
        "mixture_samples.png",
        "reconstructions.png",
        "loss_curve.png",
        "latent_map_sample.npz",
        "logs",
        "checkpoint-2",
        "checkpoint-4",
        "checkpoint-6",
    }
    assert {p.name for p in out.iterdir()} == expected
    VAEModel.from_pretrained(out)

    # Both processes continue their own ε streams after a resume.
    shutil.copytree(out / "checkpoint-2", resumed / "checkpoint-2")
    launch_two_cpu_processes(
        train_command(resumed, data["gray"], *args, "--resume_from_checkpoint", "latest", cache=data["cache"])
    )
    assert_bit_identical(out, resumed)


NAN_ON_RANK_1 = '''"""train_vae.py with a NaN loss on process 1 from its 5th batch on: a test double at the loss boundary."""
import os, runpy, sys
import vae_hub.losses

real_negative_elbo, calls = vae_hub.losses.negative_elbo, []


def negative_elbo(*args, **kwargs):
    terms = real_negative_elbo(*args, **kwargs)
    calls.append(1)
    if os.environ["RANK"] == "1" and len(calls) >= 5:
        terms.loss = terms.loss * float("nan")
    return terms


vae_hub.losses.negative_elbo = negative_elbo
sys.argv[0] = {script!r}
runpy.run_path({script!r}, run_name="__main__")
'''


def test_nan_on_one_rank_stops_every_rank_and_keeps_the_last_good_checkpoint(data, tmp_path):
    wrapper = tmp_path / "nan_on_rank_1.py"
    wrapper.write_text(NAN_ON_RANK_1.format(script=str(SCRIPT)))
    out = tmp_path / "nan"
    done = launch_two_cpu_processes(
        train_command(
            out,
            data["gray"],
            "--max_train_steps",
            "12",
            "--checkpointing_steps",
            "2",
            "--logging_steps",
            "3",
            "--report_to",
            "none",
            cache=data["cache"],
        ),
        script=wrapper,
        check=False,
    )
    assert done.returncode != 0
    # The NaN is on rank 1 only; the check is collective, so both processes report it and stop.
    # (Two processes share stderr, so one's message may follow the other's progress bar on the same line.)
    assert done.stderr.count("error: non-finite loss or weights at step 6") == 2, done.stderr[-3000:]
    assert f"Last good checkpoint: {out / 'checkpoint-4'}." in done.stderr and (out / "checkpoint-4").is_dir()
    assert not (out / "checkpoint-6").exists() and not (out / "config.json").exists() and not (out / WEIGHTS).exists()


def test_weights_broken_by_the_last_update_are_never_saved(data, tmp_path, monkeypatch, capsys):
    """The loss of the only step is finite, the update after it leaves a NaN in the weights: nothing is written."""
    adamw_step = torch.optim.AdamW.step

    def step_then_nan(self, *args, **kwargs):
        result = adamw_step(self, *args, **kwargs)
        with torch.no_grad():
            self.param_groups[0]["params"][0].view(-1)[0] = float("nan")
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", step_then_nan)
    out = tmp_path / "broken"
    argv = train_command(out, data["gray"], "--max_train_steps", "1", "--report_to", "none", cache=data["cache"])
    code, error = run_in_process(argv, monkeypatch, capsys)
    assert code == 2 and "non-finite loss or weights at step 1" in error and "Last good checkpoint: none" in error
    assert not (out / "config.json").exists() and not (out / WEIGHTS).exists()


# ==================================================================================== bad input
def tree_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def error_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` with an error message (a progress bar may be drawn with carriage returns around them)."""
    return [line.strip() for line in re.split(r"[\r\n]", stderr) if "error:" in line]


def run_in_process(argv: list[str], monkeypatch, capsys, script: Path = SCRIPT) -> tuple[int, str]:
    """Run the script's ``__main__`` in this process; returns (exit code, its one error line)."""
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    monkeypatch.setattr(sys, "argv", [str(script), *argv])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(script), run_name="__main__")
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    for bar in list(tqdm.tqdm._instances):  # a run stopped mid-loop leaves its bar, which would move later output
        bar.close()
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1, errors
    return stopped.value.code, errors[0]


# Bad flags on good data: name -> (arguments, expected message).
FLAG_CASES = {
    "missing checkpoint folder": (
        ["--resume_from_checkpoint", "no-such-checkpoint"],
        r"'no-such-checkpoint' is not a folder",
    ),
    "fp16 on cpu": (["--mixed_precision", "fp16"], r"fp16 needs a GPU"),
    "batch size 0": (["--train_batch_size", "0"], r"--train_batch_size must be at least 1, got 0"),
    "evaluation batch 0": (["--eval_batch_size", "0"], r"--eval_batch_size must be at least 1, got 0"),
    "learning rate 0": (["--learning_rate", "0"], r"--learning_rate must be in \(0, 1\], got 0.0"),
    "learning rate typo": (["--learning_rate", "1e3"], r"--learning_rate must be in \(0, 1\], got 1000.0"),
    "learning rate nan": (
        ["--learning_rate", "nan"],
        r"--learning_rate, .*--beta, --free_bits must be finite numbers",
    ),
    "adam beta 1": (["--adam_beta1", "1"], r"--adam_beta1 and --adam_beta2 must be in \[0, 1\)"),
    "negative kl weight": (["--beta", "-1"], r"--beta and --free_bits must be non-negative"),
    "negative prior components": (["--prior_components", "-1"], r"expected auto or a whole number >= 0, got '-1'"),
    "batch larger than the data": (["--train_batch_size", "100"], r"fewer than one optimisation step"),
    "bad model config": (["--norm_num_groups", "3"], r"VAEModel config"),
    "vector flag on a spatial model": (
        ["--model_type", "spatial"],
        r"--latent_dim is for --model_type vector models only",
    ),
    "spatial flag on a vector model": (
        ["--latent_channels", "4"],
        r"--latent_channels is for --model_type spatial and autoencoderkl models only, not vector",
    ),
    "adversarial term on a vector model": (
        ["--disc_weight", "0.1"],
        r"--disc_weight is for --model_type spatial and autoencoderkl",
    ),
    "adversarial weight nan": (["--disc_weight", "nan"], r"--disc_weight must be a finite number"),
    "decoder width on a vector model": (
        ["--up_block_out_channels", "8", "16"],
        r"--up_block_out_channels is for --model_type spatial models only",
    ),
    "new decoder without --train_decoder_only": (
        ["--pretrained_model_name_or_path", "a-model", "--up_block_out_channels", "8", "32"],
        r"--up_block_out_channels with --pretrained_model_name_or_path builds a new decoder .*add --train_decoder_only",
    ),
    "decoder only without a model": (
        ["--train_decoder_only"],
        r"--train_decoder_only fine-tunes a trained model's decoder: give --pretrained",
    ),
}


def bad_case(name: str, tmp: Path, data: dict) -> tuple[list[str], list[str], str]:
    """(data arguments, other arguments, expected message) of one bad input; may fill ``tmp/out`` first."""
    gray, out = data["gray"], tmp / "out"
    if name in FLAG_CASES:
        return gray, *FLAG_CASES[name]
    if name == "unknown path":
        return ["--dataset_name", str(tmp / "no-such-dataset")], [], r"^error: cannot load dataset '.*no-such-dataset'"
    if name == "missing column":
        return gray, ["--image_column", "picture"], r"'picture' is not a column; the columns are \['image', 'label'\]"
    if name == "non-image column":
        return gray, ["--image_column", "label"], r"column 'label' holds .*not images"
    if name == "no image column":
        root = write_hub_dataset(tmp / "bytes", n_train=16, n_test=4, image_column="pixels", image_feature=False)
        return ["--dataset_name", str(root)], [], r"no image column .*\['pixels', 'label'\]"
    if name == "empty split":
        root = write_hub_dataset(tmp / "empty", n_train=0, n_test=4)
        return ["--dataset_name", str(root)], [], r'cannot load dataset .*"train" corresponds to no data'
    if name == "unreadable image":
        root = write_hub_dataset(tmp / "broken", n_train=16, n_test=4, corrupt_rows=(5,))
        return ["--dataset_name", str(root)], [], r"^error: row 5: unreadable image"
    if name == "resolution of a pretrained model":
        tiny_model(8).save_pretrained(tmp / "pretrained")
        return (
            gray,
            ["--pretrained_model_name_or_path", str(tmp / "pretrained"), "--resolution", "16"],
            r"--resolution 16 does not fit the pretrained model \(sample_size=8\)",
        )
    if name == "model type of a pretrained model":
        SpatialVAEModel(block_out_channels=(8, 16), norm_num_groups=4, sample_size=8).save_pretrained(tmp / "spatial")
        return (
            gray,
            ["--pretrained_model_name_or_path", str(tmp / "spatial"), "--model_type", "vector"],
            r"--model_type vector does not fit .*SpatialVAEModel",
        )
    if name == "unknown pretrained model":
        return gray, ["--pretrained_model_name_or_path", str(tmp / "nothing")], r"cannot load --pretrained_model"
    if name == "another run's model":
        tiny_model().save_pretrained(out)
        (out / "metrics.json").write_text("{}")
        return gray, [], r"already holds a trained model; pass --overwrite_output_dir"
    if name == "latest over a finished model":  # no checkpoint to resume: a new run must not overwrite it
        tiny_model().save_pretrained(out)
        return gray, ["--resume_from_checkpoint", "latest"], r"already holds a trained model"
    if name == "another run's checkpoints":
        (out / "checkpoint-5").mkdir(parents=True)
        return gray, [], r"holds checkpoints of another run"
    if name == "hold-out fraction":
        return data["img_rgb_no_test"], ["--validation_split", "0"], r"--validation_split=0.0 is not in \(0, 1\)"
    raise AssertionError(name)


BAD_CASES = [
    "unknown path",
    "missing column",
    "non-image column",
    "no image column",
    "empty split",
    "unreadable image",
    "resolution of a pretrained model",
    "model type of a pretrained model",
    "unknown pretrained model",
    "another run's model",
    "latest over a finished model",
    "another run's checkpoints",
    "hold-out fraction",
    *FLAG_CASES,
]


@pytest.mark.parametrize("name", BAD_CASES)
def test_bad_input_one_line_error_before_training_and_output_dir_untouched(name, data, tmp_path, monkeypatch, capsys):
    data_args, args, message = bad_case(name, tmp_path, data)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    (out / "notes.txt").write_text("the user's own file")
    before = tree_hash(out)
    # The case's own flags come last, so they win over TINY's.
    argv = [
        *data_args,
        "--output_dir",
        str(out),
        "--cache_dir",
        str(data["cache"]),
        *TINY,
        "--max_train_steps",
        "2",
        *args,
    ]
    code, error = run_in_process(argv, monkeypatch, capsys)
    assert code != 0
    assert re.search(message, error), error
    assert tree_hash(out) == before


def test_unreadable_image_met_while_streaming_names_the_row(data, tmp_path, monkeypatch, capsys):
    """A streamed split is only read during training; a broken image there still gives the one-line error."""
    root = write_hub_dataset(tmp_path / "broken", n_train=16, n_test=4, corrupt_rows=(5,))
    argv = [
        "--dataset_name",
        str(root),
        "--output_dir",
        str(tmp_path / "out"),
        "--cache_dir",
        str(data["cache"]),
        *TINY,
        "--max_in_memory_mb",
        "0",
        "--dataloader_num_workers",
        "1",
        "--report_to",
        "none",
    ]
    code, error = run_in_process(argv, monkeypatch, capsys)
    assert code == 2 and error.startswith("error: row 5: unreadable image (UnidentifiedImageError")


def test_unknown_hub_dataset_from_the_command_line(tmp_path):
    """The real entry point, offline: one line on stderr, exit status 2."""
    done = run_script(
        [
            "--dataset_name",
            "nobody/no-such-dataset",
            "--output_dir",
            str(tmp_path / "out"),
            "--cache_dir",
            str(tmp_path / "cache"),
        ],
        check=False,
    )
    assert done.returncode == 2
    assert error_lines(done.stderr) == [done.stderr.strip()]
    assert done.stderr.startswith("error: cannot load dataset 'nobody/no-such-dataset'")
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


def test_under_accelerate_launch_quiet_a_bad_input_is_one_line(tmp_path):
    """The README's launcher command: the script's one line, and no traceback added by accelerate's launcher."""
    launcher = shutil.which("accelerate")
    if launcher is None:
        pytest.skip("the accelerate command is not on PATH")
    done = subprocess.run(
        [
            launcher,
            "launch",
            "--quiet",
            "--num_processes",
            "1",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            str(SCRIPT),
            "--dataset_name",
            str(tmp_path / "no-such-dataset"),
            "--output_dir",
            str(tmp_path / "out"),
        ],
        env=script_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode != 0
    assert len(error_lines(done.stderr)) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
