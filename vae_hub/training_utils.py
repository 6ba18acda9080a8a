"""Pieces shared by the accelerate training scripts (``training/train_vae.py``, ``train_latent_diffusion.py``,
``train_text_to_image.py``).

Their conventions: one-line errors (``fail``) before any work; data order a pure function of (seed, epoch)
(``epoch_batch_indices``); per-batch random streams re-seeded from (seed, process, batch) (``NoiseGenerator``);
checkpoints complete or absent (``save_checkpoint``, ``latest_checkpoint``), with the run's log in them (``RunLog``);
secrets never written (``redact``, ``public_args``). Together they make a resumed CPU run end bit-identical to an
uninterrupted one, with the same loss curve.
"""

import argparse
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator
import torch.nn.functional as F
from diffusers.training_utils import EMAModel, compute_snr
from tqdm.auto import tqdm

SECRET_ARGS = ("hub_token",)


def fail(message: str) -> None:
    """Stop with one clear line (and exit status 2) instead of a traceback."""
    # One line even for multi-line library messages, and above a progress bar rather than glued to it.
    tqdm.write("error: " + " ".join(message.split()), file=sys.stderr)
    raise SystemExit(2)


def check_output_dir(output_dir: Path, args: argparse.Namespace, final_files: tuple[str, ...]) -> None:
    """Never overwrite another run's final model (any of ``final_files`` present) or mix checkpoints of two runs."""
    if args.resume_from_checkpoint or args.overwrite_output_dir or not output_dir.exists():
        return
    if any((output_dir / name).exists() for name in final_files):
        fail(f"{output_dir} already holds a trained model; pass --overwrite_output_dir or choose another --output_dir")
    if any(output_dir.glob("checkpoint-*")):
        fail(f"{output_dir} holds checkpoints of another run; pass --resume_from_checkpoint latest to continue it, "
             "--overwrite_output_dir to start over, or another --output_dir")


class StepCounter:
    """The optimisation step, checkpointed with the rest of the training state (``register_for_checkpointing``)."""

    def __init__(self):
        self.global_step = 0

    def state_dict(self) -> dict:
        return {"global_step": self.global_step}

    def load_state_dict(self, state: dict) -> None:
        self.global_step = state["global_step"]


class NoiseGenerator(StepCounter):
    """The generator of a batch's random draws, and the step counter (checkpointed with the rest of the training state).

    The generator is re-seeded from (seed, process, batch number) for every batch instead of being checkpointed:
    accelerate saves registered objects from the main process only, so a saved generator state would hand every
    process rank 0's stream after a resume.
    """

    def __init__(self, device: torch.device, seed: int, rank: int):
        super().__init__()
        self.generator = torch.Generator(device=device)
        self.seed, self.rank = seed, rank

    def for_batch(self, batch: int) -> torch.Generator:
        """The generator for this process's ``batch``-th batch of the run (micro-batches counted)."""
        return self.generator.manual_seed(hash((self.seed, self.rank, batch)) % 2**63)


def device_time(device: torch.device) -> float:
    """``time.perf_counter()`` once the work queued on ``device`` is done (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def epoch_batch_indices(num_items: int, epoch: int, seed: int, batch_size: int, rank: int, world: int,
                        num_batches: int, skip: int, device: torch.device | None = None) -> list[torch.Tensor]:
    """This process's index batches of one epoch, batches ``skip`` to ``num_batches`` (on ``device``).

    The order is one permutation seeded by (seed, epoch), cut into global batches of ``batch_size × world``;
    process ``rank`` takes the ``rank``-th slice of each global batch.
    """
    order = torch.randperm(num_items, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    if device is not None:  # one copy per epoch: a host→GPU copy per batch would wait for the GPU
        order = order.to(device)
    return [order[(b * world + rank) * batch_size : (b * world + rank + 1) * batch_size] for b in range(skip, num_batches)]


class LossSums:
    """Running sums of loss terms (attributes ``keys`` of what ``add`` gets) on the device, no host sync per step;
    reduced across processes at logging steps."""

    def __init__(self, device: torch.device, keys: tuple[str, ...]):
        self.keys = keys
        self.totals = torch.zeros(len(keys) + 1, device=device)

    def add(self, terms) -> None:
        values = torch.stack([getattr(terms, k).detach().float() for k in self.keys] + [torch.ones((), device=self.totals.device)])
        self.totals += values

    def reduce(self, accelerator: Accelerator) -> dict:
        totals = accelerator.reduce(self.totals.clone(), reduction="sum")
        self.totals.zero_()
        return {k: (totals[i] / totals[-1]).item() for i, k in enumerate(self.keys)}


def public_args(args: argparse.Namespace) -> dict:
    """The arguments with the secrets removed."""
    return {k: v for k, v in vars(args).items() if k not in SECRET_ARGS}


def loggable_config(recorded: dict) -> dict:
    """Hyper-parameters for the trackers (``public_args`` or the like: no secrets): scalars only, None and lists
    as text."""
    return {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in recorded.items()}


def weights_are_finite(model: torch.nn.Module) -> bool:
    """No NaN or infinity in any parameter (one device sync; data-parallel replicas agree)."""
    return bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all())


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step (temporary, half-written folders are ignored)."""
    done = [p for p in output_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-", 1)[1].isdigit()]
    return max(done, key=lambda p: int(p.name.split("-", 1)[1]), default=None)


def resolve_checkpoint(output_dir: Path, which: str) -> Path:
    path = latest_checkpoint(output_dir) if which == "latest" else Path(which)
    if not path.is_dir():
        fail(f"--resume_from_checkpoint {which!r} is not a folder")
    return path


class RunLog:
    """What a run has logged so far, carried across resumes: the loss history (a dict per logged step, for the loss
    curve and the metrics) and the seconds the run has taken. Saved as ``run_log.json`` in every checkpoint; a
    checkpoint without one (an older version's) resumes with this part of the run's log only."""

    FILE = "run_log.json"

    def __init__(self, history: list[dict] | None = None, earlier_seconds: float = 0.0):
        self.history = history or []
        self.earlier_seconds = earlier_seconds
        self.started = time.time()

    @classmethod
    def resume(cls, checkpoint: Path) -> "RunLog":
        path = checkpoint / cls.FILE
        if not path.is_file():
            return cls()
        saved = json.loads(path.read_text())
        return cls(saved["history"], saved["wall_time_seconds"])

    def append(self, step: int, logs: dict) -> None:
        self.history.append({"step": step, **logs})

    @property
    def wall_time(self) -> float:
        """Seconds of the whole run: the earlier parts' (from the checkpoint) and this one's."""
        return self.earlier_seconds + time.time() - self.started

    def save(self, folder: Path) -> None:
        (folder / self.FILE).write_text(json.dumps({"history": self.history, "wall_time_seconds": self.wall_time}))


def save_checkpoint(accelerator: Accelerator, output_dir: Path, step: int, total_limit: int | None,
                    run_log: RunLog) -> None:
    """accelerate's full training state and the run's log, complete or absent: written under a temporary name, then
    renamed."""
    final, partial = output_dir / f"checkpoint-{step}", output_dir / f"checkpoint-{step}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        run_log.save(partial)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        if total_limit:
            done = sorted((p for p in output_dir.glob("checkpoint-*") if p.name.split("-", 1)[1].isdigit()),
                          key=lambda p: int(p.name.split("-", 1)[1]))
            for old in done[:-total_limit]:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()


def denoising_mse(prediction: torch.Tensor, target: torch.Tensor, noise_scheduler, timesteps: torch.Tensor,
                  snr_gamma: float | None) -> torch.Tensor:
    """The diffusion loss of a batch: MSE of the predicted ε or v (B, C, H, W) against ``target``, Min-SNR-γ
    weighted per sample when ``snr_gamma`` is given (Hang et al. 2023: min(SNR, γ)/SNR for ε, min(SNR, γ)/(SNR + 1)
    for v, as the scheduler's ``prediction_type`` says)."""
    if snr_gamma is None:
        return F.mse_loss(prediction.float(), target.float())
    snr = compute_snr(noise_scheduler, timesteps)
    epsilon = noise_scheduler.config.prediction_type == "epsilon"
    weights = torch.clamp(snr, max=snr_gamma) / (snr if epsilon else snr + 1)
    per_sample = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    return (per_sample * weights).mean()


class ema_weights:
    """Context manager: the EMA weights in the model for validation, the training weights back afterwards."""

    def __init__(self, ema: EMAModel | None, model: torch.nn.Module):
        self.ema, self.model = ema, model

    def __enter__(self):
        if self.ema is not None:
            self.ema.store(self.model.parameters())
            self.ema.copy_to(self.model.parameters())

    def __exit__(self, *exc):
        if self.ema is not None:
            self.ema.restore(self.model.parameters())


# ------------------------------------------------------------------------------------ the flags both scripts share
# Their names are diffusers' examples' (train_unconditional.py, train_text_to_image.py); the defaults that differ
# between the scripts are arguments.
def add_data_source_args(group) -> None:
    """Where the images come from: ``--dataset_name`` or ``--train_data_dir``, and the image column."""
    group.add_argument("--dataset_name", type=str, default=None, help="Hub dataset id or local folder in the Hub layout.")
    group.add_argument("--dataset_config_name", type=str, default=None)
    group.add_argument("--train_data_dir", type=str, default=None, help="A folder of images (datasets' imagefolder).")
    group.add_argument("--image_column", type=str, default=None, help="Default: the first column of datasets.Image type.")


def add_dataset_credit_arg(group) -> None:
    """``--dataset_credit``: recorded in training_info.json with the dataset card's licence, shown in cards and the Space."""
    group.add_argument("--dataset_credit", type=str, default=None,
                       help='Credit the data\'s licence asks for, shown in the model card (e.g. "Twemoji (CC-BY 4.0), '
                            'Noto (Apache-2.0)"); the licence in the dataset\'s own card is recorded as well.')


def add_optimizer_args(group, *, num_train_epochs: int, learning_rate: float, lr_warmup_steps: int,
                       adam_weight_decay: float, max_grad_norm: float) -> None:
    """Batch size, length, AdamW, learning-rate schedule, clipping and mixed precision."""
    group.add_argument("--train_batch_size", type=int, default=128, help="Per process.")
    group.add_argument("--num_train_epochs", type=int, default=num_train_epochs)
    group.add_argument("--max_train_steps", type=int, default=None, help="Overrides --num_train_epochs.")
    group.add_argument("--learning_rate", type=float, default=learning_rate)
    group.add_argument("--lr_scheduler", type=str, default="cosine",
                       help='"linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup"')
    group.add_argument("--lr_warmup_steps", type=int, default=lr_warmup_steps)
    group.add_argument("--adam_beta1", type=float, default=0.9)
    group.add_argument("--adam_beta2", type=float, default=0.999)
    group.add_argument("--adam_weight_decay", type=float, default=adam_weight_decay)
    group.add_argument("--adam_epsilon", type=float, default=1e-8)
    group.add_argument("--gradient_accumulation_steps", type=int, default=1)
    group.add_argument("--max_grad_norm", type=float, default=max_grad_norm, help="0 disables clipping.")
    group.add_argument("--mixed_precision", type=str, default="no", choices=("no", "fp16", "bf16"),
                       help="Autocast only; trainable weights stay fp32. fp16 needs a GPU.")


def add_output_args(group, *, validation_epochs: int, validation_help: str) -> None:
    """The output folder, checkpoints and resuming, logging, the validation grids, and pushing to the Hub."""
    group.add_argument("--output_dir", type=str, required=True)
    group.add_argument("--overwrite_output_dir", action="store_true")
    group.add_argument("--checkpointing_steps", type=int, default=500)
    group.add_argument("--checkpoints_total_limit", type=int, default=None)
    group.add_argument("--resume_from_checkpoint", type=str, default=None,
                       help='A checkpoint folder, or "latest": the newest in --output_dir (none yet: a new run).')
    group.add_argument("--report_to", type=str, default="tensorboard", help='"tensorboard", "wandb", "all" or "none".')
    group.add_argument("--logging_steps", type=int, default=10)
    group.add_argument("--validation_epochs", type=int, default=validation_epochs, help=validation_help)
    group.add_argument("--push_to_hub", action="store_true")
    group.add_argument("--hub_model_id", type=str, default=None)
    group.add_argument("--hub_private_repo", action="store_true")
    group.add_argument("--hub_token", type=str, default=None)


def check_shared_args(p: argparse.ArgumentParser, args: argparse.Namespace, *, counts: tuple[str, ...] = (),
                      optional_counts: tuple[str, ...] = (), reals: tuple[str, ...] = ()) -> None:
    """``p.error`` (exit 2, one line) for values of the shared flags that cannot work, and of the script's own
    ``counts`` (at least 1), ``optional_counts`` (absent or at least 1) and ``reals`` (finite or absent)."""
    if bool(args.dataset_name) == bool(args.train_data_dir):
        p.error("give exactly one of --dataset_name and --train_data_dir")
    for name in ("train_batch_size", "num_train_epochs", "gradient_accumulation_steps", "checkpointing_steps",
                 "logging_steps", "validation_epochs", *counts):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("max_train_steps", "max_train_samples", "resolution", "checkpoints_total_limit", *optional_counts):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    reals = ("learning_rate", "adam_beta1", "adam_beta2", "adam_weight_decay", "adam_epsilon", "max_grad_norm", *reals)
    if not all(getattr(args, name) is None or math.isfinite(getattr(args, name)) for name in reals):
        p.error("--" + ", --".join(reals) + " must be finite numbers")
    if not 0 < args.learning_rate <= 1:  # above 1 is a typo (1e3 for 1e-3), not a step size for AdamW
        p.error(f"--learning_rate must be in (0, 1], got {args.learning_rate}")
    if not (0 <= args.adam_beta1 < 1 and 0 <= args.adam_beta2 < 1 and args.adam_epsilon > 0 and args.adam_weight_decay >= 0):
        p.error("--adam_beta1 and --adam_beta2 must be in [0, 1), --adam_epsilon positive, --adam_weight_decay non-negative")
    if args.max_grad_norm < 0:
        p.error(f"--max_grad_norm must be non-negative, got {args.max_grad_norm}")
    if args.push_to_hub and not args.hub_model_id:
        p.error("--push_to_hub needs --hub_model_id")


def redact(argv: list[str], parser: argparse.ArgumentParser | None = None) -> list[str]:
    """The command line with secret values replaced, for the record in training_info.json.

    A value is hidden by the option it resolves to: every option string ``parser`` maps to a secret (without a
    parser: ``--hub_token``), as ``--hub_token VALUE`` or ``--hub_token=VALUE`` (the scripts' parsers refuse
    abbreviations); then every other occurrence of those values (a token pasted into another argument).
    """
    if parser is None:
        options = {f"--{name}" for name in SECRET_ARGS}
    else:
        options = {o for action in parser._actions if action.dest in SECRET_ARGS for o in action.option_strings}
    out, values, hide = [], set(), False
    for arg in argv:
        name, equals, value = arg.partition("=")
        if hide:
            values.add(arg)
            out.append("***")
        elif equals and name in options:
            values.add(value)
            out.append(name + "=***")
        else:
            out.append(arg)
        hide = not hide and arg in options
    for value in filter(None, values):
        out = [arg.replace(value, "***") for arg in out]
    return out


def hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}× {torch.cuda.get_device_name(0)}"
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def versions() -> dict:
    import accelerate
    import diffusers

    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "accelerate": accelerate.__version__,
            "python": platform.python_version()}


def text_versions() -> dict:
    """``versions()`` and those of transformers and tokenizers (the scripts that train text models)."""
    import tokenizers
    import transformers

    return {**versions(), "transformers": transformers.__version__, "tokenizers": tokenizers.__version__}


def save_loss_curve(history: list[dict], path: Path, keys: tuple[str, ...], ylabel: str, log_scale: bool = True) -> None:
    """Plot ``history`` entries ({"step": ..., key: value}) of each of ``keys`` against the step, as a PNG."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    for key in keys:
        ax.plot(steps, [h[key] for h in history], label=key.replace("_", " "))
    ax.set_xlabel("optimisation step")
    ax.set_ylabel(ylabel)
    if log_scale:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
