"""Test doubles at the Hub's network boundary, shared by test_hub.py and test_cli.py.

* ``FakeHfApi``: stands in for ``huggingface_hub.HfApi``. Every call is checked against the real method's
  signature (so the double cannot drift from the API), recorded, and answered from an in-memory set of repos;
  ``fail`` makes a method raise what the real client raises (``http_error``, ``OfflineModeIsEnabled``...).
* ``populate_hf_cache``: lays files out exactly as ``hf_hub_download`` caches them, for loading by repo id with
  ``HF_HUB_OFFLINE=1``.
* ``tiny_model_folder``: a saved tiny ``VAEModel`` with fake-but-plausible metrics, training record, grids and
  the clutter training leaves behind (checkpoints, logs, optimizer state).
* ``tiny_pipeline_folder``: the same for a saved tiny ``LatentDiffusionPipeline`` on a ``SpatialVAEModel``.
"""

import hashlib
import inspect
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import httpx2
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler
from huggingface_hub import CommitInfo, CommitOperationDelete, HfApi
from huggingface_hub.utils import hf_raise_for_status
from tiny import tiny_spatial_vae, tiny_unet, tiny_vae

from vae_hub import LatentDiffusionPipeline
from vae_hub.images import make_grid


TOKEN = "hf_TestTokenDoNotLeak0123456789abcdefXYZ"


def http_error(status: int, message: str = "") -> Exception:
    """The exception the real client raises for an HTTP ``status`` from the Hub (built by its own code)."""
    response = httpx2.Response(
        status,
        json={"error": message or f"status {status}"},
        request=httpx2.Request("POST", "https://huggingface.co/api/repos/create"),
    )
    try:
        hf_raise_for_status(response)
    except Exception as err:  # noqa: BLE001 - we want exactly what hf_raise_for_status raises
        return err
    raise AssertionError(f"hf_raise_for_status did not raise for {status}")


class FakeHfApi:
    """An in-memory Hub: ``repos`` maps (repo_type, repo_id) to its private flag, ``files`` to its files on main;
    ``commits`` keeps every commit (uploaded bytes, deleted paths)."""

    def __init__(self, repos: dict | None = None, fail: dict | None = None):
        self.repos = dict(repos or {})
        self.fail = dict(fail or {})
        self.calls: list[tuple[str, dict]] = []
        self.branches: set[tuple[str, str]] = set()
        self.commits: list[dict] = []
        self.files: dict[tuple[str, str], dict[str, bytes]] = {}  # (repo_type, repo_id) -> path -> bytes (main)

    def _call(self, method: str, *args, **kwargs) -> dict:
        """Bind the call to the real ``HfApi`` method (a misuse raises TypeError), record it, maybe fail."""
        arguments = inspect.signature(getattr(HfApi, method)).bind(None, *args, **kwargs).arguments
        arguments.pop("self")
        self.calls.append((method, dict(arguments)))
        if method in self.fail:
            raise self.fail[method]
        return arguments

    def create_repo(self, *args, **kwargs):
        a = self._call("create_repo", *args, **kwargs)
        key = (a.get("repo_type") or "model", a["repo_id"])
        if key in self.repos and not a.get("exist_ok"):
            raise http_error(409, "You already created this repo")
        self.repos.setdefault(key, bool(a.get("private")))
        return f"https://huggingface.co/{a['repo_id']}"

    def repo_info(self, *args, **kwargs):
        a = self._call("repo_info", *args, **kwargs)
        return SimpleNamespace(private=self.repos[(a.get("repo_type") or "model", a["repo_id"])])

    def create_branch(self, *args, **kwargs):
        a = self._call("create_branch", *args, **kwargs)
        self.branches.add((a["repo_id"], a["branch"]))

    def list_repo_files(self, *args, **kwargs):
        a = self._call("list_repo_files", *args, **kwargs)
        return sorted(self.files.get((a.get("repo_type") or "model", a["repo_id"]), {}))

    def create_commit(self, *args, **kwargs):
        a = self._call("create_commit", *args, **kwargs)
        files, deleted = {}, []
        for op in a["operations"]:
            if isinstance(op, CommitOperationDelete):
                deleted.append(op.path_in_repo)
                continue
            with op.as_file() as f:
                files[op.path_in_repo] = f.read()
        self.commits.append(
            {
                "repo_id": a["repo_id"],
                "repo_type": a.get("repo_type"),
                "revision": a.get("revision"),
                "token": a.get("token"),
                "files": files,
                "deleted": deleted,
            }
        )
        if a.get("revision") in (None, "main"):
            tree = self.files.setdefault(
                (a.get("repo_type") or "model", a["repo_id"]), {".gitattributes": b"*.bin lfs"}
            )
            tree.update(files)
            for path in deleted:
                del tree[path]
        return CommitInfo(
            commit_url=f"https://huggingface.co/{a['repo_id']}/commit/{'0' * 40}",
            commit_message=a["commit_message"],
            commit_description="",
            oid="0" * 40,
        )

    def methods_called(self) -> list[str]:
        return [method for method, _ in self.calls]


def populate_hf_cache(cache: Path, repo_id: str, files: dict[str, Path | bytes], revision: str = "main") -> None:
    """Put ``files`` (path in repo → local file or bytes) in the HF cache ``cache`` as ``repo_id`` at ``revision``."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()
    for path_in_repo, content in files.items():
        target = repo / "snapshots" / commit / path_in_repo
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            shutil.copyfile(content, target)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)


def tiny_model_folder(folder: Path, *, metrics: bool = True, training_info: bool = True, clutter: bool = True) -> Path:
    """Save a tiny VAEModel (with a mixture prior) to ``folder`` with what training writes next to it."""
    model = tiny_vae(sample_size=12, prior_components=2)
    model.save_pretrained(folder)
    generator = torch.Generator().manual_seed(0)
    make_grid(model.generate(4, generator=generator), nrow=2).save(folder / "samples.png")
    make_grid(model.generate(4, generator=generator), nrow=4).save(folder / "reconstructions.png")
    if metrics:
        (folder / "metrics.json").write_text(
            json.dumps(
                {
                    "dataset": "zalando-datasets/fashion_mnist",
                    "split": "test",
                    "num_images": 10000,
                    "likelihood": "bernoulli",
                    "likelihood_note": "bernoulli likelihood on pixel intensities in [0, 1] (every channel): a "
                    "cross-entropy in nats per image, not a density of the 8-bit data, so not comparable to code lengths; "
                    "no bits/dim",
                    "seed": 0,
                    "iw_samples": 100,
                    "negative_elbo_nats": 241.374,
                    "reconstruction_nats": 226.121,
                    "kl_nats": 15.253,
                    "iw_nll_nats": 236.812,
                    "bits_per_dim": None,
                    "mse": 0.012341,
                    "psnr_db": 19.0849,
                    "active_units": 3,
                    "latent_dim": 4,
                    "images_per_second": 812.3,
                }
            )
        )
    if training_info:
        (folder / "training_info.json").write_text(
            json.dumps(
                {
                    "command": "accelerate launch training/train_vae.py --dataset_name zalando-datasets/fashion_mnist "
                    "--output_dir out --hub_token ***",
                    "args": {"learning_rate": 0.001},
                    "wall_time_seconds": 1834.2,
                    "hardware": "1× NVIDIA H100 80GB HBM3",
                    "num_processes": 2,
                    "mixed_precision": "bf16",
                    "epochs": 30,
                    "steps": 12660,
                    "train_batch_size": 64,
                    "learning_rate": 0.001,
                    "dataset_name": "zalando-datasets/fashion_mnist",
                    "image_column": "image",
                    "label_column": "label",
                    "num_train_images": 54000,
                    "base_model": None,
                    "versions": {"torch": "2.13.0"},
                }
            )
        )
    if clutter:
        for junk in (
            "checkpoint-500/optimizer.bin",
            "checkpoint-500/random_states_0.pkl",
            "logs/events.out.tfevents",
            "optimizer.bin",
            "scheduler.bin",
            "random_states_0.pkl",
            "pytorch_model.bin",
            ".cache/huggingface/upload.lock",
            "notes.txt",
            "checkpoint-500/samples.png",
        ):
            (folder / junk).parent.mkdir(parents=True, exist_ok=True)
            (folder / junk).write_bytes(b"local only")
    return folder


PIPELINE_CLASSES = ["T-shirt/top", "Trouser", "Sneaker"]
PIPELINE_METRICS = {
    "final_train_loss": 0.0812,
    "loss": "denoising MSE (see args)",
    "sample_quality": {
        "steps_25_guidance_3": {
            "kind": "pipeline",
            "num_inference_steps": 25,
            "guidance_scale": 3.0,
            "num_samples": 10000,
            "frechet_distance": 12.3456,
            "class_match": 0.8734,
            "classifier": "vae-hub/fashion-classifier",
            "dataset": "zalando-datasets/fashion_mnist",
            "split": "test",
            "command": "python -m vae_hub.evaluate_samples --generator out --record",
        }
    },
}


def tiny_pipeline(vae_dir: Path | None = None) -> LatentDiffusionPipeline:
    """A class-conditional pipeline on a tiny SpatialVAEModel: 12×12 grayscale images ↔ 4×8×8 latents."""
    pipe = LatentDiffusionPipeline(
        tiny_spatial_vae(),
        tiny_unet(len(PIPELINE_CLASSES), sample_size=8),
        DPMSolverMultistepScheduler(num_train_timesteps=100),
        id2label=dict(enumerate(PIPELINE_CLASSES)),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_pipeline_folder(folder: Path, *, clutter: bool = True) -> Path:
    """Save ``tiny_pipeline()`` to ``folder`` with what train_latent_diffusion.py writes next to it."""
    pipe = tiny_pipeline()
    pipe.save_pretrained(folder)
    images = pipe(
        list(range(len(PIPELINE_CLASSES))),
        num_inference_steps=2,
        output_type="pt",
        generator=torch.Generator().manual_seed(0),
    ).images
    make_grid(images * 2 - 1, nrow=3).save(folder / "samples.png")
    (folder / "metrics.json").write_text(json.dumps(PIPELINE_METRICS))
    (folder / "training_info.json").write_text(
        json.dumps(
            {
                "command": "accelerate launch training/train_latent_diffusion.py --pretrained_vae_model_name_or_path "
                "vae-hub/fashion-spatial-vae --dataset_name zalando-datasets/fashion_mnist --output_dir out",
                "args": {"pretrained_vae_model_name_or_path": "vae-hub/fashion-spatial-vae"},
                "wall_time_seconds": 95.0,
                "hardware": "CPU",
                "num_processes": 1,
                "mixed_precision": "no",
                "epochs": 2,
                "steps": 40,
                "train_batch_size": 16,
                "learning_rate": 0.0003,
                "dataset_name": "zalando-datasets/fashion_mnist",
                "class_names": PIPELINE_CLASSES,
                "num_train_images": 320,
                "vae": "vae-hub/fashion-spatial-vae",
                "unet_parameters": sum(p.numel() for p in pipe.unet.parameters()),
                "versions": {"torch": "2.13.0"},
            }
        )
    )
    if clutter:
        for junk in (
            "checkpoint-20/optimizer.bin",
            "checkpoint-20/unet/diffusion_pytorch_model.safetensors",
            "logs/events.out.tfevents",
            "unet/diffusion_pytorch_model.bin",
            "latents_cache.pt",
            "notes.txt",
        ):
            (folder / junk).parent.mkdir(parents=True, exist_ok=True)
            (folder / junk).write_bytes(b"local only")
    return folder


def folder_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` → sha256, to show a failed command changed nothing."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def saved_folder(tmp_path_factory):
    return tiny_model_folder(tmp_path_factory.mktemp("saved") / "tiny-vae")


@pytest.fixture(scope="module")
def saved_pipeline(tmp_path_factory):
    return tiny_pipeline_folder(tmp_path_factory.mktemp("saved") / "tiny-ldm")


@pytest.fixture
def pipeline_folder(saved_pipeline, tmp_path):
    """A fresh copy of the tiny saved pipeline folder, for a test to write into."""
    return Path(shutil.copytree(saved_pipeline, tmp_path / "tiny-ldm"))


@pytest.fixture
def folder(saved_folder, tmp_path):
    """A fresh copy of the tiny saved model folder, for a test to write into."""
    return Path(shutil.copytree(saved_folder, tmp_path / "tiny-vae"))
