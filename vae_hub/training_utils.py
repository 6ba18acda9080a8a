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
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
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
        fail(
            f"{output_dir} holds checkpoints of another run; pass --resume_from_checkpoint latest to continue it, "
            "--overwrite_output_dir to start over, or another --output_dir"
        )


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


def start_run(args: argparse.Namespace, final_files: tuple[str, ...]) -> Accelerator:
    """The run's ``Accelerator`` (mixed precision, accumulation, trackers, logs under --output_dir), once the checks
    every script makes have passed, and the seed set for the models' initialisation.

    * fp16 needs a GPU: on a CPU it would silently run in fp32;
    * ``--resume_from_checkpoint latest`` with no checkpoint yet starts a new run, as in diffusers' examples: one
      command line starts a job and, after a preemption, continues it;
    * the output folder holds no other run's final model (``check_output_dir``).
    """
    from accelerate.utils import ProjectConfiguration, set_seed

    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
    if args.mixed_precision == "fp16" and accelerator.device.type == "cpu":
        fail("--mixed_precision fp16 needs a GPU (on a CPU it would silently run in fp32); use bf16 or no")
    if args.resume_from_checkpoint == "latest" and not latest_checkpoint(output_dir):
        accelerator.print(f"No checkpoint in {output_dir} yet: starting a new run.")
        args.resume_from_checkpoint = None
    check_output_dir(output_dir, args, final_files)
    set_seed(args.seed)
    return accelerator


def device_time(device: torch.device) -> float:
    """``time.perf_counter()`` once the work queued on ``device`` is done (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def epoch_batch_indices(
    num_items: int,
    epoch: int,
    seed: int,
    batch_size: int,
    rank: int,
    world: int,
    num_batches: int,
    skip: int,
    device: torch.device | None = None,
) -> list[torch.Tensor]:
    """This process's index batches of one epoch, batches ``skip`` to ``num_batches`` (on ``device``).

    The order is one permutation seeded by (seed, epoch), cut into global batches of ``batch_size × world``;
    process ``rank`` takes the ``rank``-th slice of each global batch.
    """
    order = torch.randperm(num_items, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    if device is not None:  # one copy per epoch: a host→GPU copy per batch would wait for the GPU
        order = order.to(device)
    return [
        order[(b * world + rank) * batch_size : (b * world + rank + 1) * batch_size] for b in range(skip, num_batches)
    ]


class LossSums:
    """Running sums of loss terms (attributes ``keys`` of what ``add`` gets) on the device, no host sync per step;
    reduced across processes at logging steps."""

    def __init__(self, device: torch.device, keys: tuple[str, ...]):
        self.keys = keys
        self.totals = torch.zeros(len(keys) + 1, device=device)

    def add(self, terms) -> None:
        values = torch.stack(
            [getattr(terms, k).detach().float() for k in self.keys] + [torch.ones((), device=self.totals.device)]
        )
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


def save_checkpoint(
    accelerator: Accelerator, output_dir: Path, step: int, total_limit: int | None, run_log: RunLog
) -> None:
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
            done = sorted(
                (p for p in output_dir.glob("checkpoint-*") if p.name.split("-", 1)[1].isdigit()),
                key=lambda p: int(p.name.split("-", 1)[1]),
            )
            for old in done[:-total_limit]:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()


def denoising_mse(
    prediction: torch.Tensor, target: torch.Tensor, noise_scheduler, timesteps: torch.Tensor, snr_gamma: float | None
) -> torch.Tensor:
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

    return {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "accelerate": accelerate.__version__,
        "python": platform.python_version(),
    }


def text_versions() -> dict:
    """``versions()`` and those of transformers and tokenizers (the scripts that train text models)."""
    import tokenizers
    import transformers

    return {**versions(), "transformers": transformers.__version__, "tokenizers": tokenizers.__version__}


def save_loss_curve(
    history: list[dict], path: Path, keys: tuple[str, ...], ylabel: str, log_scale: bool = True
) -> None:
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
