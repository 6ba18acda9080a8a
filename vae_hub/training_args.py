"""The flags the accelerate training scripts share, and their checks: the standard library only, so that a script's
``--help`` and a bad flag come back before torch is imported."""

import argparse
import math


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
