"""The flags the accelerate training scripts share, and their checks: the standard library only, so that a script's
``--help`` and a bad flag come back before torch is imported."""

import argparse
import math


BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
# --inference_scheduler → its diffusers class, by name (diffusers is imported once the flags are parsed)
INFERENCE_SCHEDULERS = {"dpmsolver++": "DPMSolverMultistepScheduler", "ddim": "DDIMScheduler"}
# The diffusion scripts' flags that check_shared_args checks: counts (at least 1) and reals (finite).
DIFFUSION_COUNTS = (
    "layers_per_block",
    "attention_head_dim",
    "norm_num_groups",
    "ddpm_num_steps",
    "num_inference_steps",
    "encode_batch_size",
)
DIFFUSION_REALS = (
    "conditioning_dropout_prob",
    "guidance_scale",
    "ema_max_decay",
    "ema_inv_gamma",
    "ema_power",
    "snr_gamma",
)


# Their names are diffusers' examples' (train_unconditional.py, train_text_to_image.py); the defaults that differ
# between the scripts are arguments.
def add_data_source_args(group) -> None:
    """Where the images come from: ``--dataset_name`` or ``--train_data_dir``, and the image column."""
    group.add_argument(
        "--dataset_name", type=str, default=None, help="Hub dataset id or local folder in the Hub layout."
    )
    group.add_argument("--dataset_config_name", type=str, default=None)
    group.add_argument("--train_data_dir", type=str, default=None, help="A folder of images (datasets' imagefolder).")
    group.add_argument(
        "--image_column", type=str, default=None, help="Default: the first column of datasets.Image type."
    )


def add_dataset_credit_arg(group) -> None:
    """``--dataset_credit``: recorded in training_info.json with the dataset card's licence, shown in cards and the Space."""
    group.add_argument(
        "--dataset_credit",
        type=str,
        default=None,
        help="Credit the data's licence asks for, shown in the model card (e.g. \"Twemoji (CC-BY 4.0), "
        "Noto (Apache-2.0)\"); the licence in the dataset's own card is recorded as well.",
    )


def add_optimizer_args(
    group,
    *,
    num_train_epochs: int,
    learning_rate: float,
    lr_warmup_steps: int,
    adam_weight_decay: float,
    max_grad_norm: float,
) -> None:
    """Batch size, length, AdamW, learning-rate schedule, clipping and mixed precision."""
    group.add_argument("--train_batch_size", type=int, default=128, help="Per process.")
    group.add_argument("--num_train_epochs", type=int, default=num_train_epochs)
    group.add_argument("--max_train_steps", type=int, default=None, help="Overrides --num_train_epochs.")
    group.add_argument("--learning_rate", type=float, default=learning_rate)
    group.add_argument(
        "--lr_scheduler",
        type=str,
        default="cosine",
        help='"linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup"',
    )
    group.add_argument("--lr_warmup_steps", type=int, default=lr_warmup_steps)
    group.add_argument("--adam_beta1", type=float, default=0.9)
    group.add_argument("--adam_beta2", type=float, default=0.999)
    group.add_argument("--adam_weight_decay", type=float, default=adam_weight_decay)
    group.add_argument("--adam_epsilon", type=float, default=1e-8)
    group.add_argument("--gradient_accumulation_steps", type=int, default=1)
    group.add_argument("--max_grad_norm", type=float, default=max_grad_norm, help="0 disables clipping.")
    group.add_argument(
        "--mixed_precision",
        type=str,
        default="no",
        choices=("no", "fp16", "bf16"),
        help="Autocast only; trainable weights stay fp32. fp16 needs a GPU.",
    )


def add_output_args(group, *, validation_epochs: int, validation_help: str) -> None:
    """The output folder, checkpoints and resuming, logging, the validation grids, and pushing to the Hub."""
    group.add_argument("--output_dir", type=str, required=True)
    group.add_argument("--overwrite_output_dir", action="store_true")
    group.add_argument("--checkpointing_steps", type=int, default=500)
    group.add_argument("--checkpoints_total_limit", type=int, default=None)
    group.add_argument(
        "--resume_from_checkpoint",
        type=str,
        default=None,
        help='A checkpoint folder, or "latest": the newest in --output_dir (none yet: a new run).',
    )
    group.add_argument("--report_to", type=str, default="tensorboard", help='"tensorboard", "wandb", "all" or "none".')
    group.add_argument("--logging_steps", type=int, default=10)
    group.add_argument("--validation_epochs", type=int, default=validation_epochs, help=validation_help)
    group.add_argument("--push_to_hub", action="store_true")
    group.add_argument("--hub_model_id", type=str, default=None)
    group.add_argument("--hub_private_repo", action="store_true")
    group.add_argument("--hub_token", type=str, default=None)


def check_shared_args(
    p: argparse.ArgumentParser,
    args: argparse.Namespace,
    *,
    counts: tuple[str, ...] = (),
    optional_counts: tuple[str, ...] = (),
    reals: tuple[str, ...] = (),
) -> None:
    """``p.error`` (exit 2, one line) for values of the shared flags that cannot work, and of the script's own
    ``counts`` (at least 1), ``optional_counts`` (absent or at least 1) and ``reals`` (finite or absent)."""
    if bool(args.dataset_name) == bool(args.train_data_dir):
        p.error("give exactly one of --dataset_name and --train_data_dir")
    for name in (
        "train_batch_size",
        "num_train_epochs",
        "gradient_accumulation_steps",
        "checkpointing_steps",
        "logging_steps",
        "validation_epochs",
        *counts,
    ):
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
    if not (
        0 <= args.adam_beta1 < 1 and 0 <= args.adam_beta2 < 1 and args.adam_epsilon > 0 and args.adam_weight_decay >= 0
    ):
        p.error(
            "--adam_beta1 and --adam_beta2 must be in [0, 1), --adam_epsilon positive, --adam_weight_decay non-negative"
        )
    if args.max_grad_norm < 0:
        p.error(f"--max_grad_norm must be non-negative, got {args.max_grad_norm}")
    if args.push_to_hub and not args.hub_model_id:
        p.error("--push_to_hub needs --hub_model_id")


def add_unet_args(group, *, attention_levels: list[int], attention_help: str, dropout_help: str) -> None:
    """The UNet's shape and the conditioning dropout of classifier-free guidance (``--conditioning_dropout_prob``:
    1 trains the same UNet without its condition, the unconditional baseline)."""
    group.add_argument("--block_out_channels", type=int, nargs="+", default=[64, 128])
    group.add_argument("--layers_per_block", type=int, default=2)
    group.add_argument(
        "--attention_levels",
        type=int,
        nargs="*",
        default=attention_levels,
        help=f"Levels (0 = the first of --block_out_channels) with {attention_help}.",
    )
    group.add_argument("--attention_head_dim", type=int, default=8)
    group.add_argument("--norm_num_groups", type=int, default=32)
    group.add_argument(
        "--conditioning_dropout_prob",
        type=float,
        default=0.1,
        help=f"Probability of training on {dropout_help} (what classifier-free guidance needs); 1 trains "
        "the same UNet without its condition, the unconditional baseline.",
    )


def add_diffusion_args(
    group, *, grids: str, num_inference_steps: int, guidance_scale: float, noise_offset: bool
) -> None:
    """The noise schedule and loss, and the scheduler, steps and guidance of the saved pipeline's ``grids``."""
    group.add_argument("--prediction_type", type=str, default="epsilon", choices=("epsilon", "v_prediction"))
    group.add_argument("--ddpm_num_steps", type=int, default=1000)
    group.add_argument("--ddpm_beta_schedule", type=str, default="linear", choices=BETA_SCHEDULES)
    group.add_argument(
        "--snr_gamma",
        type=float,
        default=None,
        help="Min-SNR loss weighting (5.0 is usual; https://arxiv.org/abs/2303.09556). Default: none.",
    )
    if noise_offset:
        group.add_argument(
            "--noise_offset",
            type=float,
            default=0.0,
            help="Noise offset (https://www.crosslabs.org/blog/diffusion-with-offset-noise); 0.1 is usual.",
        )
    group.add_argument(
        "--inference_scheduler",
        type=str,
        default="dpmsolver++",
        choices=tuple(INFERENCE_SCHEDULERS),
        help=f"The scheduler saved with the pipeline and used for the {grids}.",
    )
    group.add_argument("--num_inference_steps", type=int, default=num_inference_steps, help=f"For the {grids}.")
    group.add_argument("--guidance_scale", type=float, default=guidance_scale, help=f"For the {grids}.")


def add_ema_args(group, *, ema_help: str) -> None:
    """``--use_ema`` and diffusers' ``EMAModel`` warm-up: decay = min(max_decay, 1 − (1 + step/inv_gamma)^−power)."""
    group.add_argument("--use_ema", action="store_true", help=ema_help)
    group.add_argument("--ema_max_decay", type=float, default=0.9999)
    group.add_argument(
        "--ema_inv_gamma", type=float, default=1.0, help="EMA warm-up: decay = 1 − (1 + step/inv_gamma)^−power."
    )
    group.add_argument("--ema_power", type=float, default=3 / 4)


def check_diffusion_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``p.error`` for values of ``add_unet_args``', ``add_diffusion_args``' and ``add_ema_args``' flags that cannot
    work (after ``check_shared_args`` with ``DIFFUSION_COUNTS`` and ``DIFFUSION_REALS``)."""
    if min(args.block_out_channels) < 1:
        p.error(f"--block_out_channels must be positive, got {args.block_out_channels}")
    if not 0 <= args.conditioning_dropout_prob <= 1:
        p.error(f"--conditioning_dropout_prob must be in [0, 1], got {args.conditioning_dropout_prob}")
    if args.snr_gamma is not None and args.snr_gamma <= 0:
        p.error(f"--snr_gamma must be positive, got {args.snr_gamma}")
    if getattr(args, "noise_offset", 0) < 0:
        p.error(f"--noise_offset must be non-negative, got {args.noise_offset}")
    if args.guidance_scale < 0:
        p.error(f"--guidance_scale must be non-negative, got {args.guidance_scale}")
    if not (0 < args.ema_max_decay < 1 and args.ema_inv_gamma > 0 and args.ema_power > 0):
        p.error("--ema_max_decay must be in (0, 1), --ema_inv_gamma and --ema_power positive")
    levels = len(args.block_out_channels)
    if any(not 0 <= level < levels for level in args.attention_levels):
        p.error(
            f"--attention_levels must be in 0..{levels - 1} (one level per --block_out_channels), "
            f"got {args.attention_levels}"
        )
