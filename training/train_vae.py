#!/usr/bin/env python
"""Train or fine-tune a vae-hub ``VAEModel``, a ``SpatialVAEModel`` or diffusers' own ``AutoencoderKL`` with 🤗 Accelerate.

    accelerate launch --quiet training/train_vae.py --dataset_name zalando-datasets/fashion_mnist --output_dir fashion-vae
    accelerate launch --quiet training/train_vae.py --model_type spatial --beta 1e-4 ... --output_dir fashion-spatial-vae
    accelerate launch --quiet training/train_vae.py --model_type autoencoderkl --block_out_channels 32 64 128 128 ...
    accelerate launch --quiet training/train_vae.py --pretrained_model_name_or_path stabilityai/sd-vae-ft-mse ...

An ``AutoencoderKL`` is trained through ``vae_hub.AutoencoderKLWithLikelihood`` (the same loss, evaluation and card
as the other types) and saved as a plain AutoencoderKL folder that diffusers loads on its own.

(``--quiet``: a bad input stops the script with one line, ``error: ...``, and exit status 2; without it accelerate's
launcher adds a traceback of its own for any non-zero exit.)

The same script runs on one CPU, one GPU, several GPUs or nodes (``accelerate launch --multi_gpu ...``), and as two
CPU processes (``ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 ...``). It reads top to bottom:
``parse_args()`` → ``main()``: data → model → optimiser → (resume) → loop with checkpoints and validation grids →
mixture prior, scaling factor, evaluation, ``save_pretrained``, model card, optional push.

Data order is a pure function of (seed, epoch): each epoch is one seeded permutation, cut into global batches of
``train_batch_size × num_processes`` images, and process r takes the r-th slice of every global batch. Together with
the checkpointed RNG states this makes a resumed run end with bit-identical weights to an uninterrupted one (CPU).
"""

import argparse
import json
import math
import shlex
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from vae_hub.constants import AUTO
from vae_hub.training_args import (
    add_data_source_args,
    add_dataset_credit_arg,
    add_optimizer_args,
    add_output_args,
    check_shared_args,
)


# --model_type → its class, by its name in vae_hub.models.MODEL_CLASSES (imported once the flags are parsed)
MODEL_TYPES = {"vector": "VAEModel", "spatial": "SpatialVAEModel", "autoencoderkl": "AutoencoderKL"}
MAP_TYPES = ("spatial", "autoencoderkl")  # a map of latents, for latent diffusion
FLAG_TYPES = {  # the flags that only some model types have
    "latent_dim": ("vector",),
    "prior_components": ("vector",),
    "latent_channels": MAP_TYPES,
    "up_block_out_channels": ("spatial",),
    "layers_per_up_block": ("spatial",),
}
SPATIAL_BETA = 1e-4  # KL weight per latent element: see benchmarks/RESULTS.md ("Spatial VAE: the KL weight")
FINAL_FILES = ("config.json", "diffusion_pytorch_model.safetensors")  # a finished run's model
LOSS_KEYS = ("loss", "reconstruction", "kl", "negative_elbo")
MAX_PRIOR_CODES = 20_000  # training codes the mixture prior is fitted to
MODEL_FLAGS = (
    "latent_dim",
    "latent_channels",
    "block_out_channels",
    "layers_per_block",
    "norm_num_groups",
    "act_fn",
    "likelihood",
    "up_block_out_channels",
    "layers_per_up_block",
)
DECODER_FLAGS = ("up_block_out_channels", "layers_per_up_block")  # with --train_decoder_only: a new, wider decoder


def build_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False: "--hub_tok" must not silently mean --hub_token (redact() knows the full spellings)
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        allow_abbrev=False,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = p.add_argument_group("data")
    add_data_source_args(data)
    add_dataset_credit_arg(data)
    data.add_argument("--resolution", type=int, default=None, help="Image size; default: the model's or the data's.")
    data.add_argument(
        "--num_channels", type=int, default=None, choices=(1, 3), help="Default: the model's or the data's."
    )
    data.add_argument("--max_train_samples", type=int, default=None)
    data.add_argument(
        "--validation_split",
        type=float,
        default=0.1,
        help="Fraction of train held out when the dataset has no test/validation split.",
    )
    data.add_argument("--cache_dir", type=str, default=None)
    data.add_argument(
        "--max_in_memory_mb",
        type=float,
        default=2048,
        help="Decode the train split once into memory up to this size; stream larger ones.",
    )
    data.add_argument("--dataloader_num_workers", type=int, default=2, help="Workers for a streamed dataset.")

    model = p.add_argument_group("model (flags left out take the model class's defaults)")
    model.add_argument(
        "--model_type",
        type=str,
        default=None,
        choices=tuple(MODEL_TYPES),
        help="vector: VAEModel (default); spatial: SpatialVAEModel, a map of latents for latent "
        "diffusion; autoencoderkl: diffusers' AutoencoderKL, Stable Diffusion's VAE (flags left "
        "out take AutoencoderKL's own defaults: one stage of 64 channels, f = 1; SD's is "
        "--block_out_channels 128 256 512 512 --layers_per_block 2, f = 8). Fine-tuning or "
        "--model_config_name_or_path take the type from the config.",
    )
    model.add_argument("--pretrained_model_name_or_path", type=str, default=None, help="Fine-tune this model.")
    model.add_argument(
        "--train_decoder_only",
        action="store_true",
        help="With --pretrained_model_name_or_path: fine-tune the decoder only, as Stable Diffusion's "
        "ft-MSE VAE was. The encoder, its latents, scaling_factor and mixture prior stay exactly "
        "as they are, so a diffusion pipeline trained on the latents keeps working.",
    )
    model.add_argument(
        "--model_config_name_or_path",
        type=str,
        default=None,
        help="config.json (or its folder) of a model to train from scratch.",
    )
    model.add_argument("--latent_dim", type=int, default=None, help="vector: the code's dimension (default 16).")
    model.add_argument(
        "--latent_channels",
        type=int,
        default=None,
        help="spatial, autoencoderkl: channels of the latent map (default 4).",
    )
    model.add_argument(
        "--block_out_channels",
        type=int,
        nargs="+",
        default=None,
        help="Channels per stage (vector default 32 64; spatial default 32 64 64, f = 4).",
    )
    model.add_argument("--layers_per_block", type=int, default=None)
    model.add_argument(
        "--up_block_out_channels",
        type=int,
        nargs="+",
        default=None,
        help="spatial: the decoder's channels per stage (default: as --block_out_channels). With "
        "--train_decoder_only, a new decoder of this width is trained on the pretrained encoder.",
    )
    model.add_argument(
        "--layers_per_up_block",
        type=int,
        default=None,
        help="spatial: the decoder's residual blocks per stage (default: --layers_per_block).",
    )
    model.add_argument("--norm_num_groups", type=int, default=None)
    model.add_argument("--act_fn", type=str, default=None)
    model.add_argument(
        "--likelihood",
        type=str,
        default=None,
        choices=("bernoulli", "gaussian", "laplace"),
        help="p(x | z): autoencoderkl takes gaussian or laplace (default), whose location is the "
        "decoded image and whose per-channel scale is learned (saved in likelihood.json). With "
        "--pretrained_model_name_or_path it switches the model between gaussian and laplace: gaussian "
        "fine-tunes for MSE, as sd-vae-ft-mse's decoder was.",
    )
    model.add_argument(
        "--prior_components",
        type=prior_components,
        default=None,
        help="vector: components of the mixture prior fitted to the training codes after training: a "
        "number, 0 for none, or auto: chosen by the held-out log-likelihood of the codes "
        "(vae_hub.prior), with a progress bar. Left out: a fine-tuned model's own K, else auto "
        "over candidates no larger than the run's steps.",
    )

    opt = p.add_argument_group("optimisation")
    add_optimizer_args(
        opt, num_train_epochs=10, learning_rate=1e-3, lr_warmup_steps=200, adam_weight_decay=0.0, max_grad_norm=100.0
    )
    opt.add_argument(
        "--beta",
        type=float,
        default=None,
        help=f"KL weight (1: the ELBO, the vector default; spatial default {SPATIAL_BETA}, sharp "
        "reconstructions with a smooth latent map).",
    )
    opt.add_argument(
        "--recompute_scaling_factor",
        action="store_true",
        help="Fine-tuning: measure scaling_factor anew on the fine-tuned latents. By default a fine-tune "
        "keeps the pretrained model's, because a diffusion model trained on its latents depends on "
        "it (the latents' std after scaling is reported in metrics.json either way).",
    )
    opt.add_argument(
        "--kl_warmup_steps", type=int, default=0, help="Linear warm-up of the KL weight from 0 to --beta."
    )
    opt.add_argument("--free_bits", type=float, default=0.0, help="Nats per latent dimension not penalised.")
    gan = p.add_argument_group(
        "adversarial term (spatial and autoencoderkl; off by default: see benchmarks/RESULTS.md)"
    )
    gan.add_argument(
        "--disc_weight",
        type=float,
        default=0.0,
        help="Weight of a PatchGAN hinge loss with latent diffusion's adaptive weight (0: off).",
    )
    gan.add_argument(
        "--disc_start", type=int, default=0, help="Optimisation step at which the adversarial term starts."
    )
    gan.add_argument("--disc_learning_rate", type=float, default=None, help="Default: --learning_rate.")
    gan.add_argument("--disc_channels", type=int, default=32, help="Channels of the discriminator's first layer.")
    gan.add_argument("--disc_layers", type=int, default=2, help="Stride-2 layers of the discriminator.")
    opt.add_argument(
        "--use_ema", action="store_true", help="Keep an EMA of the weights (diffusers' EMAModel) and ship it."
    )
    opt.add_argument("--ema_decay", type=float, default=0.999)
    opt.add_argument("--seed", type=int, default=0)

    state = p.add_argument_group("outputs and state")
    add_output_args(state, validation_epochs=1, validation_help="Sample and reconstruction grids every N epochs.")
    state.add_argument(
        "--eval_iw_samples",
        type=int,
        default=10,
        help="Importance samples of the end-of-training evaluation (python -m vae_hub.evaluate uses 1000).",
    )
    state.add_argument("--eval_max_samples", type=int, default=None)
    state.add_argument(
        "--eval_batch_size",
        type=int,
        default=512,
        help="Latents per decoder call in that evaluation (raise it on a GPU: 16384 decodes 16 images x 1000).",
    )
    for action in p._actions:  # the formatter shows defaults only of flags with a help text
        action.help = action.help or "(default: %(default)s)"
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    check_shared_args(
        p,
        args,
        counts=("eval_iw_samples", "eval_batch_size"),
        optional_counts=(
            "eval_max_samples",
            "latent_dim",
            "latent_channels",
            "layers_per_block",
            "layers_per_up_block",
        ),
        reals=("beta", "free_bits"),
    )
    if args.pretrained_model_name_or_path and args.model_config_name_or_path:
        p.error(
            "--pretrained_model_name_or_path (fine-tune) and --model_config_name_or_path (from scratch) exclude each other"
        )
    if args.recompute_scaling_factor and not args.pretrained_model_name_or_path:
        p.error(
            "--recompute_scaling_factor is for fine-tuning (--pretrained_model_name_or_path): a new model's "
            "scaling_factor is always measured"
        )
    if args.train_decoder_only and not args.pretrained_model_name_or_path:
        p.error("--train_decoder_only fine-tunes a trained model's decoder: give --pretrained_model_name_or_path")
    new_decoder = [f"--{f}" for f in DECODER_FLAGS if getattr(args, f) is not None]
    if new_decoder and args.pretrained_model_name_or_path and not args.train_decoder_only:
        p.error(
            f"{' '.join(new_decoder)} with --pretrained_model_name_or_path builds a new decoder for the pretrained "
            "encoder: add --train_decoder_only"
        )
    if (args.beta or 0) < 0 or args.free_bits < 0:
        p.error("--beta and --free_bits must be non-negative")
    if not (
        math.isfinite(args.disc_weight)
        and math.isfinite(args.disc_learning_rate or 1.0)
        and 0 < (args.disc_learning_rate or 1.0) <= 1
    ):
        p.error("--disc_weight must be a finite number and --disc_learning_rate in (0, 1]")
    if args.disc_weight < 0 or args.disc_start < 0 or args.disc_channels < 1 or args.disc_layers < 1:
        p.error("--disc_weight and --disc_start must be non-negative, --disc_channels and --disc_layers at least 1")
    return args


def prior_components(value: str) -> int | str:
    """``--prior_components``: "auto" or a whole number ≥ 0."""
    if value == AUTO:
        return value
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected auto or a whole number >= 0, got {value!r}")
    return int(value)


if __name__ == "__main__":  # first, so that --help and a bad flag come back before the imports below load torch
    arguments = parse_args()

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from vae_hub import AutoencoderKLWithLikelihood, SpatialVAEModel
from vae_hub.adversarial import PatchDiscriminator, adaptive_weight, generator_loss, hinge_discriminator_loss
from vae_hub.data import (
    DataError,
    StreamingImages,
    dataset_license,
    decode_images,
    find_image_column,
    find_label_column,
    infer_image_format,
    load_image_dataset,
    select_splits,
)
from vae_hub.images import make_grid, uint8_to_float
from vae_hub.latent import latent_channel_images
from vae_hub.losses import kl_weight, negative_elbo
from vae_hub.models import MODEL_CLASSES, AnyModel, model_class, own_decoder_stages
from vae_hub.models.autoencoder_kl import KL_LIKELIHOODS, autoencoder_kl_defaults
from vae_hub.prior import CANDIDATES as PRIOR_CANDIDATES
from vae_hub.training_utils import (
    LossSums,
    NoiseGenerator,
    RunLog,
    device_time,
    ema_weights,
    epoch_batch_indices,
    fail,
    hardware,
    latest_checkpoint,
    loggable_config,
    public_args,
    redact,
    resolve_checkpoint,
    save_checkpoint,
    save_loss_curve,
    start_run,
    versions,
    weights_are_finite,
)


logger = get_logger(__name__)


def main(args: argparse.Namespace) -> None:
    resolve_model_type(args)  # may read a config from the Hub: here, not in parse_args
    output_dir = Path(args.output_dir)
    accelerator = start_run(args, FINAL_FILES)  # seeds the model initialisation

    # ---------------------------------------------------------------- data
    with accelerator.main_process_first():
        dataset = load_image_dataset(args.dataset_name, args.dataset_config_name, args.train_data_dir, args.cache_dir)
    train_split, val_split, val_name = select_splits(dataset, args.validation_split, args.seed)
    if args.max_train_samples:
        train_split = train_split.shuffle(seed=args.seed).select(range(min(args.max_train_samples, len(train_split))))
    image_column = find_image_column(train_split, args.image_column)
    label_column = find_label_column(train_split)

    # ---------------------------------------------------------------- model
    model = build_model(args, train_split, image_column)
    if args.pretrained_model_name_or_path and args.likelihood not in (None, model.config.likelihood):
        accelerator.print(switch_likelihood(model, args.likelihood))
    size, channels = model.config.sample_size, model.config.in_channels
    world, rank = accelerator.num_processes, accelerator.process_index
    global_batch = args.train_batch_size * world
    batches_per_epoch = len(train_split) // global_batch
    steps_per_epoch = batches_per_epoch // args.gradient_accumulation_steps
    if steps_per_epoch == 0:
        fail(
            f"the train split has {len(train_split)} images, fewer than one optimisation step needs "
            f"({global_batch} per batch × {args.gradient_accumulation_steps} accumulation): lower --train_batch_size"
        )
    max_train_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(max_train_steps / steps_per_epoch)
    if "latent_dim" in model.config and (prior_note := settle_prior_components(args, model, max_train_steps)):
        accelerator.print(prior_note)
    if args.lr_warmup_steps >= max_train_steps:  # the learning rate would never reach --learning_rate
        shorter = max_train_steps // 10
        accelerator.print(
            f"warning: --lr_warmup_steps {args.lr_warmup_steps} is not shorter than the run "
            f"({max_train_steps} steps): warming up over {shorter} steps (a tenth of the run) instead."
        )
        args.lr_warmup_steps = shorter

    in_memory = len(train_split) * channels * size * size / 2**20 <= args.max_in_memory_mb
    codes_for_prior = min(MAX_PRIOR_CODES, len(train_split) if in_memory else len(val_split))  # see finish()
    if args.prior_components != AUTO and args.prior_components > codes_for_prior:
        fail(
            f"--prior_components {args.prior_components} needs at least as many images to fit the mixture prior to, "
            f"and there are {codes_for_prior} ({'train' if in_memory else val_name} split): pass a smaller "
            "--prior_components, or 0 for none"
        )
    show = accelerator.is_local_main_process
    if in_memory:  # decoded once; batches are tensor indexing, on the accelerator's device
        train_images = decode_images(train_split, image_column, size, channels, desc="decoding train", progress=show)
        train_images = train_images.images.to(accelerator.device)
    else:
        train_images = StreamingImages(train_split, image_column, size, channels)
    val_images = decode_images(val_split, image_column, size, channels, label_column, f"decoding {val_name}", show)
    eval_count = min(len(val_split), args.eval_max_samples or len(val_split))
    accelerator.print(
        f"data: {args.dataset_name or args.train_data_dir}: {len(train_split):,} training images ({image_column!r}), "
        f"{len(val_split):,} held out ({val_name}), as {channels}×{size}×{size}\n"
        f"model: {describe_model(model, args)}\n"
        f"steps: {max_train_steps:,} ({num_epochs} epochs of {steps_per_epoch:,}), batch {global_batch} "
        f"({args.train_batch_size} × {world} processes × {args.gradient_accumulation_steps} accumulation), "
        f"learning rate {args.learning_rate:g} after {args.lr_warmup_steps} warm-up steps\n"
        f"then: {f'mixture prior ({args.prior_components}), ' if args.prior_components else ''}evaluation of "
        f"{eval_count:,} held-out images with "
        f"k={args.eval_iw_samples} importance samples (--eval_max_samples, --eval_iw_samples)\n"
        f"writes: {output_dir.resolve()}"
    )

    # ---------------------------------------------------------------- optimisation
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.adam_weight_decay,
        eps=args.adam_epsilon,
    )
    # Stepped by us once per optimisation step, so warm-up and length are in optimisation steps on any world size.
    lr_scheduler = get_scheduler(
        args.lr_scheduler, optimizer, num_warmup_steps=args.lr_warmup_steps, num_training_steps=max_train_steps
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    disc = disc_optimizer = None
    if args.disc_weight > 0:  # in the checkpoints (prepared), never in the saved model
        disc = PatchDiscriminator(channels, args.disc_channels, args.disc_layers)
        disc_optimizer = torch.optim.AdamW(
            disc.parameters(), lr=args.disc_learning_rate or args.learning_rate, betas=(0.5, 0.9)
        )
        disc, disc_optimizer = accelerator.prepare(disc, disc_optimizer)
    noise = NoiseGenerator(accelerator.device, args.seed, rank)  # ε of the reparameterization, per process
    accelerator.register_for_checkpointing(lr_scheduler, noise)
    ema = None
    if args.use_ema:
        unwrapped = accelerator.unwrap_model(model)
        ema = EMAModel(
            unwrapped.parameters(),
            decay=args.ema_decay,
            foreach=True,  # one kernel per op, not per tensor
            model_cls=type(unwrapped),
            model_config=unwrapped.config,
        )
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)

    global_step, run_log = 0, RunLog()
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(output_dir, args.resume_from_checkpoint)
        accelerator.print(f"Resuming from {checkpoint}")
        accelerator.load_state(str(checkpoint))
        global_step, run_log = noise.global_step, RunLog.resume(checkpoint)
    if accelerator.is_main_process:  # the inputs are checked: from here on the run writes its folder
        if args.overwrite_output_dir and not args.resume_from_checkpoint:
            for stale in output_dir.glob("checkpoint-*"):  # the old run's: "latest" must never pick them up
                shutil.rmtree(stale)
        output_dir.mkdir(parents=True, exist_ok=True)
        accelerator.init_trackers(
            "train_vae", config=loggable_config(model_args(args, accelerator.unwrap_model(model).config))
        )

    # ---------------------------------------------------------------- training loop
    likelihood = accelerator.unwrap_model(model).config.likelihood
    progress = tqdm(total=max_train_steps, initial=global_step, desc="steps", disable=not show)
    sums, gan_sums = LossSums(accelerator.device, LOSS_KEYS), GanSums(accelerator.device)
    timed_steps, timed_since, timed_until, start_step = 0, None, None, global_step
    batches_done = global_step * args.gradient_accumulation_steps  # numbers each batch's ε stream
    first_epoch = global_step // steps_per_epoch
    for epoch in range(first_epoch, num_epochs):
        model.train()
        skip = (
            (global_step - epoch * steps_per_epoch) * args.gradient_accumulation_steps if epoch == first_epoch else 0
        )
        for x in epoch_batches(train_images, epoch, args, rank, world, batches_per_epoch, skip, accelerator.device):
            adversarial = disc is not None and global_step >= args.disc_start
            with accelerator.accumulate(*([model, disc] if disc is not None else [model])):
                out = model(x, sample_posterior=True, generator=noise.for_batch(batches_done))
                beta = kl_weight(global_step, args.beta, args.kl_warmup_steps)
                terms = negative_elbo(out.decoder_params, x, out.latent_dist, likelihood, beta, args.free_bits)
                loss = terms.loss
                if adversarial:
                    gan = adversarial_generator_term(
                        accelerator.unwrap_model(model),
                        accelerator.unwrap_model(disc),
                        terms.reconstruction,
                        out.sample,
                        args.disc_weight,
                    )
                    loss = loss + gan.adaptive_weight * gan.generator_loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if adversarial:  # real and reconstructed images in one forward (DDP wants one per backward)
                    logits = disc(torch.cat([x, out.sample.detach()])).chunk(2)
                    gan.disc_loss = hinge_discriminator_loss(*logits)
                    accelerator.backward(gan.disc_loss)
                    disc_optimizer.step()
                    disc_optimizer.zero_grad(set_to_none=True)
                    gan_sums.add(gan)
            sums.add(terms)
            batches_done += 1
            if not accelerator.sync_gradients:
                continue
            lr_scheduler.step()
            if ema is not None:
                ema.step(accelerator.unwrap_model(model).parameters())
            global_step += 1
            noise.global_step = global_step
            progress.update(1)
            # Throughput of the loop at steady state: from the 5th step of this run to the last one (periodic
            # checkpoints and validation inside that span count; the final ones and the evaluation do not).
            if timed_since is None and global_step - start_step >= 5:
                timed_since = device_time(accelerator.device)
            elif timed_since is not None:
                timed_steps += 1
                if global_step == max_train_steps:
                    timed_until = device_time(accelerator.device)

            at_checkpoint = global_step % args.checkpointing_steps == 0
            if global_step % args.logging_steps == 0 or at_checkpoint or global_step == max_train_steps:
                logs = sums.reduce(accelerator)  # across processes; also the NaN check, before any checkpoint
                if disc is not None:
                    logs.update(gan_sums.reduce(accelerator))
                # the weights too: a finite loss can still be followed by an update that breaks them
                if not (all(math.isfinite(v) for v in logs.values()) and weights_are_finite(model)):
                    last = latest_checkpoint(output_dir)
                    fail(
                        f"non-finite loss or weights at step {global_step} ({logs}); stopped on every process. "
                        f"Last good checkpoint: {last or 'none'}. Try a lower --learning_rate or --max_grad_norm."
                    )
                logs.update(lr=lr_scheduler.get_last_lr()[0], beta=beta, epoch=epoch)
                accelerator.log(logs, step=global_step)
                run_log.append(global_step, logs)
                progress.set_postfix(
                    loss=f"{logs['loss']:.1f}", rec=f"{logs['reconstruction']:.1f}", kl=f"{logs['kl']:.1f}"
                )
            if at_checkpoint:
                save_checkpoint(accelerator, output_dir, global_step, args.checkpoints_total_limit, run_log)
            if global_step >= max_train_steps:
                break
        if (epoch + 1) % args.validation_epochs == 0 or global_step >= max_train_steps:
            with ema_weights(ema, accelerator.unwrap_model(model)):
                validate(accelerator, accelerator.unwrap_model(model), val_images, args, global_step, output_dir)
        if global_step >= max_train_steps:
            break
    progress.close()
    throughput = None  # images/s at steady state, for the record and benchmarks/bench_train.py
    if timed_until is not None and timed_steps:
        throughput = timed_steps * global_batch * args.gradient_accumulation_steps / (timed_until - timed_since)

    # ---------------------------------------------------------------- finish: prior, scale, save, evaluate, card
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        vae = accelerator.unwrap_model(model)
        if ema is not None:
            ema.copy_to(vae.parameters())
        finish(
            vae.eval(),
            train_images,
            val_images,
            val_name,
            args,
            output_dir,
            run_log.history,
            accelerator.print,
            wall_time=run_log.wall_time,
            throughput=throughput,
            world=world,
            label_column=label_column,
            image_column=image_column,
            num_train=len(train_split),
            steps=global_step,
            epochs=math.ceil(global_step / steps_per_epoch),
        )
    accelerator.end_training()


# ==================================================================== pieces of main, in the order they are used
def resolve_model_type(args: argparse.Namespace) -> None:
    """Settle ``--model_type`` (from the config being fine-tuned or trained, if any) and its defaults; refuse the
    flags of the other type instead of ignoring them."""
    source = args.pretrained_model_name_or_path or args.model_config_name_or_path
    if source:
        flag = "pretrained_model_name_or_path" if args.pretrained_model_name_or_path else "model_config_name_or_path"
        try:
            cls = model_class(source, cache_dir=args.cache_dir)
        except (OSError, ValueError) as err:
            fail(f"cannot load --{flag}: {err}")
        found = next(t for t, name in MODEL_TYPES.items() if MODEL_CLASSES[name] is cls)
        if args.model_type not in (None, found):
            fail(f"--model_type {args.model_type} does not fit {source}, which holds a {cls.__name__}")
        args.model_type = found
    args.model_type = args.model_type or "vector"
    spatial = args.model_type in MAP_TYPES
    for flag, types in FLAG_TYPES.items():
        if getattr(args, flag) is not None and args.model_type not in types:
            fail(f"--{flag} is for --model_type {' and '.join(types)} models only, not {args.model_type}")
    if args.disc_weight > 0 and not spatial:
        fail(f"--disc_weight is for --model_type {' and '.join(MAP_TYPES)} (the autoencoders of latent diffusion)")
    if args.model_type == "autoencoderkl" and args.likelihood not in (None, *KL_LIKELIHOODS):
        fail(
            f"--likelihood {args.likelihood}: an AutoencoderKL decodes an image, the location of a gaussian or "
            "laplace likelihood (bernoulli would make its output logits)"
        )
    if args.beta is None:
        args.beta = SPATIAL_BETA if spatial else 1.0
    if args.train_decoder_only:
        if args.prior_components is not None:
            fail(
                "--prior_components refits the mixture prior to new codes; with --train_decoder_only the codes do "
                "not change and the model keeps its prior"
            )
        args.prior_components = 0  # no refit: the model keeps its own prior
    if args.prior_components is None and spatial:
        args.prior_components = 0  # a vector model's default depends on the model and the run: settle_prior_components


def settle_prior_components(args: argparse.Namespace, model: AnyModel, max_train_steps: int) -> str | None:
    """``--prior_components`` left out, made proportionate to the run: a fine-tuned model keeps its own K (refitted
    to the new codes, no search), a new one searches only candidates K ≤ the run's steps (at least 10); ``auto``
    given searches them all. Returns the sentence that says which, or None when nothing was left to settle."""
    args.prior_candidates = list(PRIOR_CANDIDATES)
    if args.prior_components is not None:
        return None
    own = model.config.get("prior_components") if args.pretrained_model_name_or_path else 0
    if own:
        args.prior_components = own
        return (
            f"mixture prior: K = {own}, the pretrained model's, refitted to the new codes (--prior_components "
            "auto searches anew, 0 fits none)"
        )
    args.prior_components = AUTO
    args.prior_candidates = [k for k in PRIOR_CANDIDATES if k <= max(10, max_train_steps)]
    if len(args.prior_candidates) == len(PRIOR_CANDIDATES):
        return None
    return (
        f"mixture prior: K chosen among {args.prior_candidates}, at most the run's {max_train_steps} steps "
        "(--prior_components auto tries up to 1000, a number fixes K, 0 fits none)"
    )


def build_model(args: argparse.Namespace, train_split, image_column: str) -> AnyModel:
    """Fine-tune a pretrained model, or build one from a config file or the model flags (size/channels from data)."""
    cls = MODEL_CLASSES[MODEL_TYPES[args.model_type]]
    if args.pretrained_model_name_or_path:
        try:
            model = cls.from_pretrained(args.pretrained_model_name_or_path, cache_dir=args.cache_dir)
        except (OSError, ValueError) as err:
            fail(f"cannot load --pretrained_model_name_or_path: {err}")
        for flag, field in (("resolution", "sample_size"), ("num_channels", "in_channels")):
            given = getattr(args, flag)
            if given is not None and given != model.config[field]:
                fail(
                    f"--{flag} {given} does not fit the pretrained model ({field}={model.config[field]}); "
                    "images are resized/converted to the model's format, so leave it out"
                )
        new_decoder = {f: getattr(args, f) for f in DECODER_FLAGS if getattr(args, f) is not None}
        if new_decoder:
            model = with_new_decoder(model, new_decoder)
        if args.train_decoder_only:  # frozen, and never updated by the EMA either: bit-identical latents
            model.encoder.requires_grad_(False)
        return model.train()
    data_channels, data_size = infer_image_format(train_split, image_column)
    config = {name: getattr(args, name) for name in MODEL_FLAGS if getattr(args, name) is not None}
    config.update(in_channels=args.num_channels or data_channels, sample_size=args.resolution or data_size)
    if args.model_config_name_or_path:
        config = {k: v for k, v in cls.load_config(args.model_config_name_or_path).items() if not k.startswith("_")}
        config["sample_size"] = args.resolution or config.get("sample_size", data_size)
        config["in_channels"] = args.num_channels or config.get("in_channels", data_channels)
        config.pop("out_channels", None)
    try:
        if cls is AutoencoderKLWithLikelihood:
            return new_autoencoder_kl(config, args.likelihood)
        return cls(**config)
    except ValueError as err:
        fail(str(err))


def new_autoencoder_kl(config: dict, likelihood: str | None) -> AutoencoderKLWithLikelihood:
    """A new AutoencoderKL from the model flags (or a config file): its down/up block types follow the number of
    stages, as in Stable Diffusion's VAE; fields left out take AutoencoderKL's defaults."""
    config.pop("likelihood", None)
    stages = len(config.get("block_out_channels", autoencoder_kl_defaults()["block_out_channels"]))
    config = {
        "down_block_types": ("DownEncoderBlock2D",) * stages,
        "up_block_types": ("UpDecoderBlock2D",) * stages,
        **config,
        "out_channels": config["in_channels"],
    }
    return AutoencoderKLWithLikelihood.from_config(config, **({"likelihood": likelihood} if likelihood else {}))


def switch_likelihood(model: AnyModel, family: str) -> str:
    """Make a pretrained model's p(x | z) a ``family`` ("gaussian" or "laplace") of the same variance: the decoded
    image stays the location, and the learned scale becomes σ = √2·b (or b = σ/√2), so training starts where the
    pretrained model stopped. Bernoulli decodes logits, not a location, so it is refused either way. Returns the
    sentence that says so."""
    own = model.config.likelihood
    if "bernoulli" in (own, family):
        fail(
            f"--likelihood {family}: the pretrained model's likelihood is {own}; only gaussian and laplace share a "
            "decoder (a location and a scale), so leave --likelihood out"
        )
    with torch.no_grad():
        model.log_scale.add_(math.log(math.sqrt(2)) * (1 if family == "gaussian" else -1))
    if isinstance(model, AutoencoderKLWithLikelihood):
        model.likelihood = family
    else:
        model.register_to_config(likelihood=family)
    return f"likelihood: the pretrained model's {own} becomes {family} of the same variance (--likelihood)"


def with_new_decoder(model: SpatialVAEModel, decoder_config: dict) -> SpatialVAEModel:
    """``model``'s encoder (weights copied exactly) with a new, freshly initialised decoder of ``decoder_config``
    (``up_block_out_channels``/``layers_per_up_block``); the scaling factor and everything else of the config stay."""
    config = {k: v for k, v in model.config.items() if not k.startswith("_")}
    try:
        new = type(model)(**{**config, **decoder_config})
    except ValueError as err:
        fail(str(err))
    new.encoder.load_state_dict(model.encoder.state_dict())
    return new


def epoch_batches(images, epoch, args, rank, world, batches_per_epoch, skip, device):
    """This process's batches of one epoch as float images in [-1, 1] on ``device``, after skipping ``skip``.

    The order is one permutation seeded by (seed, epoch); process ``rank`` takes its slice of each global batch.
    """
    usable = (batches_per_epoch // args.gradient_accumulation_steps) * args.gradient_accumulation_steps
    index_batches = epoch_batch_indices(
        len(images),
        epoch,
        args.seed,
        args.train_batch_size,
        rank,
        world,
        usable,
        skip,
        images.device if isinstance(images, torch.Tensor) else None,
    )
    if isinstance(images, torch.Tensor):
        for idx in index_batches:
            yield uint8_to_float(images[idx])
    else:
        loader = torch.utils.data.DataLoader(
            images,
            batch_sampler=index_batches,
            num_workers=args.dataloader_num_workers,
            pin_memory=device.type == "cuda",
        )
        for batch in loader:
            yield uint8_to_float(batch.to(device, non_blocking=True))


def adversarial_generator_term(
    vae: AnyModel, disc: PatchDiscriminator, reconstruction: torch.Tensor, fake: torch.Tensor, disc_weight: float
) -> SimpleNamespace:
    """The autoencoder's side of the GAN: −mean D(x̂) and its adaptive weight at the decoder's last layer.

    The discriminator's weights are frozen for this pass, so the generator loss trains the autoencoder only.
    """
    disc.requires_grad_(False)
    generator = generator_loss(disc(fake))
    disc.requires_grad_(True)
    last = (vae.vae if isinstance(vae, AutoencoderKLWithLikelihood) else vae).decoder.conv_out
    weight = disc_weight * adaptive_weight(reconstruction, generator, last.weight)
    return SimpleNamespace(generator_loss=generator, adaptive_weight=weight, disc_loss=None)


class GanSums(LossSums):
    """The same for the adversarial term (summed over the steps where it is on)."""

    def __init__(self, device: torch.device):
        super().__init__(device, ("generator_loss", "disc_loss", "adaptive_weight"))

    def reduce(self, accelerator: Accelerator) -> dict:
        return {} if self.totals[-1].item() == 0 else super().reduce(accelerator)


@torch.no_grad()
def validate(accelerator, vae: AnyModel, val_images, args, step: int, output_dir: Path) -> None:
    """Grids saved and logged — prior samples (vector model) or the latent maps (spatial model), and
    reconstructions — and the validation −ELBO."""
    if not accelerator.is_main_process:
        return
    was_training = vae.training
    vae.eval()
    device = accelerator.device
    generator = torch.Generator(device=device).manual_seed(args.seed)
    x = uint8_to_float(val_images.images[:32].to(device))
    out = vae(x)
    pairs = torch.stack([x, out.sample], dim=1).flatten(0, 1)  # original, reconstruction, original, ...
    grids = {"reconstructions": make_grid(pairs, nrow=16, scale=2)}
    if "latent_channels" in vae.config:
        maps = latent_channel_images(out.latents[:8], vae.config.scaling_factor, vae.config.shift_factor)
        grids["latents"] = make_grid(maps, nrow=vae.config.latent_channels, scale=4)
    else:
        grids["samples"] = make_grid(vae.generate(64, generator=generator), nrow=8, scale=2)
    for name, grid in grids.items():
        grid.save(output_dir / f"{name}.png")
    x = uint8_to_float(val_images.images[:2048].to(device))
    out = vae(x, sample_posterior=True, generator=generator)
    val = negative_elbo(out.decoder_params, x, out.latent_dist, vae.config.likelihood)
    accelerator.log(
        {
            "val_negative_elbo": val.negative_elbo.item(),
            "val_reconstruction": val.reconstruction.item(),
            "val_kl": val.kl.item(),
        },
        step=step,
    )
    for tracker in accelerator.trackers:
        if hasattr(tracker, "log_images") and tracker.name == "tensorboard":
            import numpy as np

            tracker.log_images(
                {k: np.asarray(g.convert("RGB"))[None] for k, g in grids.items()}, step=step, dataformats="NHWC"
            )
    vae.train(was_training)


def describe_model(model: AnyModel, args: argparse.Namespace) -> str:
    cfg = model.config
    origin = (
        f"fine-tuning {args.pretrained_model_name_or_path}"
        if args.pretrained_model_name_or_path
        else f"new, from {args.model_config_name_or_path}"
        if args.model_config_name_or_path
        else "new"
    )
    origin += " (its decoder only: the encoder is frozen)" if args.train_decoder_only else ""
    params = sum(p.numel() for p in model.parameters())
    latent = f"{cfg.latent_dim}-D latent" if "latent_dim" in cfg else f"{cfg.latent_channels}-channel latent map"
    return (
        f"{origin} {type(model).__name__}: {params:,} parameters, {latent}, channels "
        f"{list(cfg.block_out_channels)} × {cfg.layers_per_block} block(s){own_decoder_stages(cfg)}, "
        f"{cfg.likelihood} likelihood"
    )


def model_args(args: argparse.Namespace, config) -> dict:
    """The arguments as the run used them: the model flags replaced by the model's own architecture (a fine-tune or
    a config file ignores them, so their defaults would misdescribe the model), secrets removed."""
    recorded = public_args(args)
    for flag in (f for f in MODEL_FLAGS if f in config):
        recorded[flag] = list(config[flag]) if isinstance(config[flag], (list, tuple)) else config[flag]
    return recorded


def finish(
    vae,
    train_images,
    val_images,
    val_name,
    args,
    output_dir,
    history,
    say,
    *,
    wall_time,
    throughput,
    world,
    label_column,
    image_column,
    num_train,
    steps,
    epochs,
) -> None:
    finish_started = time.time()  # the record's wall time counts this part too (scale, prior, evaluation)
    """Mixture prior, scaling factor, save_pretrained, latent-map sample, evaluation, grids, loss curve, card, push
    (main process); ``say`` prints a line."""
    from vae_hub import hub
    from vae_hub.evaluate import evaluate_model
    from vae_hub.explore import MapSample
    from vae_hub.latent import compute_scaling_factor, encode_images
    from vae_hub.prior import fit_mixture_prior

    codes_from = train_images if isinstance(train_images, torch.Tensor) else val_images.images
    codes_from = codes_from[
        torch.randperm(len(codes_from), generator=torch.Generator().manual_seed(args.seed))[:MAX_PRIOR_CODES]
    ]
    measured = compute_scaling_factor(vae, codes_from)
    if args.pretrained_model_name_or_path and not args.recompute_scaling_factor:
        say(
            f"scaling_factor: kept the pretrained model's {vae.config.scaling_factor:.5g} (a diffusion model trained on "
            f"its latents depends on it); the fine-tuned latents measure {measured:.5g}: --recompute_scaling_factor "
            "would write that instead"
        )
    else:
        vae.register_to_config(scaling_factor=measured)
    vae.save_pretrained(output_dir)  # first: nothing after this point can lose the trained weights
    prior = None
    if args.prior_components:
        try:
            prior = fit_mixture_prior(
                vae,
                encode_images(vae, codes_from),
                args.prior_components,
                seed=args.seed,
                candidates=tuple(args.prior_candidates),
                progress=True,
            )
        except (
            ValueError
        ) as err:  # the data was checked before training; a degenerate fit should still not cost the run
            tqdm.write(
                f"warning: no mixture prior ({' '.join(str(err).split())}); the model is saved without one",
                file=sys.stderr,
            )
        else:
            say(f"mixture prior: {prior.describe()}")
            vae.save_pretrained(output_dir)
            mixture_samples = vae.generate(64, generator=torch.Generator().manual_seed(args.seed), prior="mixture")
            make_grid(mixture_samples, nrow=8, scale=2).save(output_dir / "mixture_samples.png")
    dataset = args.dataset_name or args.train_data_dir
    if "latent_dim" in vae.config:  # a vector model's latent map in the Space: its own held-out images
        MapSample.from_images(
            val_images.images,
            val_images.labels,
            val_images.label_names,
            f"{Path(dataset).name}, {val_name}",
            seed=args.seed,
        ).save(output_dir / hub.MAP_SAMPLE_NAME)

    eval_images = val_images.images[: args.eval_max_samples] if args.eval_max_samples else val_images.images
    evaluation_started = time.time()
    metrics = evaluate_model(
        vae,
        eval_images,
        iw_samples=args.eval_iw_samples,
        seed=args.seed,
        batch_size=args.eval_batch_size,
        dataset=dataset,
        split=val_name,
    )
    evaluation_time = time.time() - evaluation_started
    say(
        f"evaluation: {len(eval_images):,} images × k={args.eval_iw_samples} in {evaluation_time:.0f} s, "
        f"{evaluation_time / (wall_time + evaluation_time):.0%} of this run (--eval_max_samples, --eval_iw_samples "
        f"shorten it; python -m vae_hub.evaluate measures a tighter bound later)"
    )
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    info = {
        "command": "accelerate launch training/train_vae.py " + shlex.join(redact(sys.argv[1:], build_parser())),
        "args": model_args(args, vae.config),
        "architecture": {k: v for k, v in vae.config.items() if not k.startswith("_")},
        "mixture_prior": prior.to_dict() if prior else None,
        "wall_time_seconds": round(wall_time + time.time() - finish_started, 1),
        "training_loop_seconds": round(wall_time, 1),
        "train_images_per_second": round(throughput, 1) if throughput else None,
        "hardware": hardware(),
        "num_processes": world,
        "mixed_precision": args.mixed_precision,
        "epochs": epochs,
        "steps": steps,
        "train_batch_size": args.train_batch_size,
        "learning_rate": args.learning_rate,
        "dataset_name": args.dataset_name or args.train_data_dir,
        "dataset_license": dataset_license(args.dataset_name),
        "dataset_credit": args.dataset_credit,
        "image_column": image_column,
        "label_column": label_column,
        "num_train_images": num_train,
        "base_model": args.pretrained_model_name_or_path,
        "scaling_factor": {
            "value": vae.config.scaling_factor,
            "measured": measured,
            "kept_from_base_model": vae.config.scaling_factor != measured,
        },
        "versions": versions(),
    }
    (output_dir / "training_info.json").write_text(json.dumps(info, indent=2))
    save_loss_curve(
        history, output_dir / "loss_curve.png", ("negative_elbo", "reconstruction", "kl"), "nats per image"
    )
    hub.write_model_card(output_dir, repo_id=args.hub_model_id)
    print(json.dumps(metrics, indent=2))
    if args.push_to_hub:
        hub.push_to_hub(output_dir, args.hub_model_id, private=args.hub_private_repo, token=args.hub_token)
    say(
        f"saved to {output_dir.resolve()}: the model, its card (README.md), metrics.json, training_info.json, "
        f"grids{f' and https://huggingface.co/{args.hub_model_id}' if args.push_to_hub else ''}"
    )


if __name__ == "__main__":
    try:
        main(arguments)  # parsed above, before the heavy imports
    except DataError as error:  # from a DataLoader worker it also holds the worker's traceback: keep our last line
        fail(str(error).strip().splitlines()[-1].split("DataError: ", 1)[-1])
