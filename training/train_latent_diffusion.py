#!/usr/bin/env python
"""Train a class-conditional latent diffusion model (a UNet2DModel) on a frozen spatial VAE's latents with 🤗 Accelerate.

    accelerate launch training/train_latent_diffusion.py --pretrained_vae_model_name_or_path fashion-spatial-vae \\
        --dataset_name zalando-datasets/fashion_mnist --output_dir fashion-ldm

The output folder is a ``vae_hub.LatentDiffusionPipeline`` (``model_index.json`` + ``vae/ unet/ scheduler/``), loadable
with ``LatentDiffusionPipeline.from_pretrained(folder)``, plus ``samples.png`` (a row per class), ``loss_curve.png``,
``training_info.json``, ``metrics.json`` and a model card. The saved sampling scheduler is a
``DPMSolverMultistepScheduler`` (DPM-Solver++, good samples in 20-25 steps) built from the training ``DDPMScheduler``'s
config, or a ``DDIMScheduler`` with ``--inference_scheduler ddim``; any diffusers scheduler can be swapped in later.

It reads top to bottom: ``parse_args()`` → ``main()``: VAE (frozen) → data → latents, encoded once → UNet → optimiser →
(resume) → loop with checkpoints and validation grids → pipeline ``save_pretrained``, grids, record, card, push.
The VAE's posterior (mean, std) of every training image is computed once and held in memory; each batch draws its
latents z = mean + std·ε from it, scaled as the pipeline expects: (z − shift_factor) · scaling_factor.

Classifier-free guidance: the class embedding has one extra entry, the last, meaning "no class"; each label is
replaced by it with probability ``--conditioning_dropout_prob`` so that one UNet learns both predictions. A dataset
without a class column (or ``--class_column none``) trains an unconditional model.

Exact resume and several processes work as in ``train_vae.py`` (``vae_hub.training_utils``): data order is a pure
function of (seed, epoch), and all of a batch's random draws (ε of the posterior, noise, timesteps, label dropout)
come from a generator seeded by (seed, process, batch), so a resumed CPU run ends bit-identical to an uninterrupted one.
"""

import argparse
import json
import math
import shlex
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

from vae_hub.pipeline_defaults import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS
from vae_hub.training_args import (
    DIFFUSION_COUNTS,
    DIFFUSION_REALS,
    INFERENCE_SCHEDULERS,
    add_data_source_args,
    add_diffusion_args,
    add_ema_args,
    add_optimizer_args,
    add_output_args,
    add_unet_args,
    check_diffusion_args,
    check_shared_args,
)


FINAL_FILES = ("model_index.json",)  # a finished run's pipeline
MAX_CLASSES = 1000
MAX_GRID_ROWS = 20  # classes shown in the sample grids
SPATIAL_VAE_CLASSES = ("SpatialVAEModel", "AutoencoderKL")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    # allow_abbrev=False: an abbreviated --hub_tok would slip past the redaction of --hub_token
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    data = p.add_argument_group("data")
    add_data_source_args(data)
    data.add_argument(
        "--class_column",
        type=str,
        default=None,
        help='Integer class labels. Default: the ClassLabel column, if any; "none": unconditional.',
    )
    data.add_argument("--resolution", type=int, default=None, help="Image size; default: the VAE's sample_size.")
    data.add_argument("--max_train_samples", type=int, default=None)
    data.add_argument("--cache_dir", type=str, default=None)
    data.add_argument(
        "--encode_batch_size", type=int, default=256, help="Images per VAE call when encoding the data once."
    )

    model = p.add_argument_group("model")
    model.add_argument(
        "--pretrained_vae_model_name_or_path",
        type=str,
        required=True,
        help="A spatial VAE (vae_hub SpatialVAEModel or diffusers AutoencoderKL), kept frozen.",
    )
    model.add_argument(
        "--unet_config",
        type=str,
        default=None,
        help="config.json (or its folder) of a UNet2DModel; the shape flags below are then ignored.",
    )
    add_unet_args(
        model, attention_levels=[1], attention_help="self-attention blocks", dropout_help='the "no class" label'
    )

    add_diffusion_args(
        p.add_argument_group("diffusion"),
        grids="sample grids (the pipeline's defaults)",
        num_inference_steps=DEFAULT_NUM_INFERENCE_STEPS,
        guidance_scale=DEFAULT_GUIDANCE_SCALE,
        noise_offset=False,
    )

    opt = p.add_argument_group("optimisation")
    add_optimizer_args(
        opt, num_train_epochs=100, learning_rate=1e-4, lr_warmup_steps=500, adam_weight_decay=1e-2, max_grad_norm=1.0
    )
    add_ema_args(opt, ema_help="Keep an EMA of the UNet (diffusers' EMAModel) and ship it.")
    opt.add_argument("--seed", type=int, default=0)

    state = p.add_argument_group("outputs and state")
    add_output_args(state, validation_epochs=5, validation_help="Save a sample grid (a row per class) every N epochs.")
    state.add_argument(
        "--num_validation_images",
        type=int,
        default=8,
        help="Images per class in the sample grids (a row per class, the first 20).",
    )

    args = p.parse_args(argv)
    check_shared_args(p, args, counts=("num_validation_images", *DIFFUSION_COUNTS), reals=DIFFUSION_REALS)
    check_diffusion_args(p, args)
    return args


if __name__ == "__main__":  # first, so that --help and a bad flag come back before the imports below load torch
    arguments = parse_args()

import datasets
import diffusers
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DModel
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from vae_hub import LatentDiffusionPipeline, hub
from vae_hub.data import (
    DataError,
    decode_images,
    find_image_column,
    find_label_column,
    infer_image_format,
    load_image_dataset,
)
from vae_hub.images import make_grid
from vae_hub.posteriors import encode_posterior, latent_std, probe_latent_shape, sample_latents
from vae_hub.training_utils import (
    LossSums,
    NoiseGenerator,
    RunLog,
    denoising_mse,
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
    output_dir = Path(args.output_dir)
    accelerator = start_run(args, FINAL_FILES)  # seeds the UNet initialisation

    # ---------------------------------------------------------------- VAE (frozen) and data
    vae = load_spatial_vae(args.pretrained_vae_model_name_or_path, args.cache_dir).to(accelerator.device)
    resolution = args.resolution or vae.config.sample_size
    latent_shape = probe_latent_shape(vae, resolution, accelerator.device)
    with accelerator.main_process_first():
        dataset = load_image_dataset(args.dataset_name, args.dataset_config_name, args.train_data_dir, args.cache_dir)
    if "train" not in dataset or len(dataset["train"]) == 0:
        raise DataError(f"the dataset has no (non-empty) 'train' split; its splits are {list(dataset)}")
    train_split = dataset["train"]
    if args.max_train_samples:
        train_split = train_split.shuffle(seed=args.seed).select(range(min(args.max_train_samples, len(train_split))))
    image_column = find_image_column(train_split, args.image_column)
    data_channels = infer_image_format(train_split, image_column)[0]
    if data_channels != vae.config.in_channels:
        kinds = {1: "grayscale", 3: "RGB"}
        fail(
            f"the dataset's images are {kinds[data_channels]} ({data_channels} channel(s)) but the VAE takes "
            f"{vae.config.in_channels}-channel images: use a VAE trained on this kind of image"
        )
    class_column, class_names = find_classes(train_split, args.class_column)
    num_classes = len(class_names)
    unet = build_unet(args, latent_shape, num_classes)

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

    show = accelerator.is_local_main_process
    images = decode_images(train_split, image_column, resolution, data_channels, class_column, "decoding train", show)
    latents = encode_posterior(vae, images.images, args.encode_batch_size, accelerator.device, show)
    labels = images.labels.to(accelerator.device) if class_column else None
    del images
    scaled_std = latent_std(latents, args.seed)
    if not 0.5 < scaled_std < 2:
        logger.warning(
            f"the scaled latents have std {scaled_std:.3g}, far from 1: the VAE's scaling_factor "
            f"({vae.config.scaling_factor}) does not fit it; diffusion trains best on unit-variance latents",
            main_process_only=True,
        )

    # clip_sample=False: latents are not images in [-1, 1] (DDPM's and DDIM's default would clip their x0 there)
    noise_scheduler = DDPMScheduler(
        num_train_timesteps=args.ddpm_num_steps,
        beta_schedule=args.ddpm_beta_schedule,
        prediction_type=args.prediction_type,
        clip_sample=False,
    )
    inference_scheduler_class = getattr(diffusers, INFERENCE_SCHEDULERS[args.inference_scheduler])
    inference_scheduler = inference_scheduler_class.from_config(noise_scheduler.config)

    # ---------------------------------------------------------------- optimisation
    optimizer = torch.optim.AdamW(
        unet.parameters(),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.adam_weight_decay,
        eps=args.adam_epsilon,
    )
    # Stepped by us once per optimisation step, so warm-up and length are in optimisation steps on any world size.
    lr_scheduler = get_scheduler(
        args.lr_scheduler, optimizer, num_warmup_steps=args.lr_warmup_steps, num_training_steps=max_train_steps
    )
    unet, optimizer = accelerator.prepare(unet, optimizer)
    noise = NoiseGenerator(accelerator.device, args.seed, rank)  # all random draws of a batch, per process
    accelerator.register_for_checkpointing(lr_scheduler, noise)
    ema = None
    if args.use_ema:
        unwrapped = accelerator.unwrap_model(unet)
        ema = EMAModel(
            unwrapped.parameters(),
            decay=args.ema_max_decay,
            use_ema_warmup=True,
            inv_gamma=args.ema_inv_gamma,
            power=args.ema_power,
            foreach=True,
            model_cls=UNet2DModel,
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
        accelerator.init_trackers("train_latent_diffusion", config=loggable_config(public_args(args)))

    def sample_grid(step: int) -> None:
        """A grid of samples, a row per class (main process; the EMA weights when kept)."""
        if not accelerator.is_main_process:
            return
        model = accelerator.unwrap_model(unet).eval()
        with ema_weights(ema, model):
            pipe = make_pipeline(vae, model, inference_scheduler, class_names)
            save_sample_grid(pipe, args, output_dir / "samples.png", accelerator, step)
        model.train()

    # ---------------------------------------------------------------- training loop
    progress = tqdm(total=max_train_steps, initial=global_step, desc="steps", disable=not show)
    sums = LossSums(accelerator.device, ("loss",))
    timed_steps, timed_since, timed_until, start_step = 0, None, None, global_step
    batches_done = global_step * args.gradient_accumulation_steps  # numbers each batch's random stream
    usable_batches = steps_per_epoch * args.gradient_accumulation_steps
    first_epoch = global_step // steps_per_epoch
    for epoch in range(first_epoch, num_epochs):
        unet.train()
        skip = (
            (global_step - epoch * steps_per_epoch) * args.gradient_accumulation_steps if epoch == first_epoch else 0
        )
        for idx in epoch_batch_indices(
            len(latents.mean),
            epoch,
            args.seed,
            args.train_batch_size,
            rank,
            world,
            usable_batches,
            skip,
            accelerator.device,
        ):
            with accelerator.accumulate(unet):
                loss = denoising_loss(
                    unet, noise_scheduler, latents, labels, idx, noise.for_batch(batches_done), num_classes, args
                )
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(unet.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            sums.add(SimpleNamespace(loss=loss))
            batches_done += 1
            if not accelerator.sync_gradients:
                continue
            lr_scheduler.step()
            if ema is not None:
                ema.step(accelerator.unwrap_model(unet).parameters())
            global_step += 1
            noise.global_step = global_step
            progress.update(1)
            # Throughput of the loop at steady state: from the 5th step of this run to the last one.
            if timed_since is None and global_step - start_step >= 5:
                timed_since = device_time(accelerator.device)
            elif timed_since is not None:
                timed_steps += 1
                if global_step == max_train_steps:
                    timed_until = device_time(accelerator.device)

            at_checkpoint = global_step % args.checkpointing_steps == 0
            if global_step % args.logging_steps == 0 or at_checkpoint or global_step == max_train_steps:
                logs = sums.reduce(accelerator)  # across processes; also the NaN check, before any checkpoint
                if not (math.isfinite(logs["loss"]) and weights_are_finite(unet)):
                    last = latest_checkpoint(output_dir)
                    fail(
                        f"non-finite loss or weights at step {global_step} ({logs}); stopped on every process. "
                        f"Last good checkpoint: {last or 'none'}. Try a lower --learning_rate or --max_grad_norm."
                    )
                logs.update(lr=lr_scheduler.get_last_lr()[0], epoch=epoch)
                accelerator.log(logs, step=global_step)
                run_log.append(global_step, logs)
                progress.set_postfix(loss=f"{logs['loss']:.4f}")
            if at_checkpoint:
                save_checkpoint(accelerator, output_dir, global_step, args.checkpoints_total_limit, run_log)
            if global_step >= max_train_steps:
                break
        if (epoch + 1) % args.validation_epochs == 0 and global_step < max_train_steps:
            sample_grid(global_step)
        if global_step >= max_train_steps:
            break
    progress.close()
    throughput = None  # latents/s at steady state
    if timed_until is not None and timed_steps:
        throughput = timed_steps * global_batch * args.gradient_accumulation_steps / (timed_until - timed_since)

    # ---------------------------------------------------------------- finish: pipeline, grids, record, card
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        model = accelerator.unwrap_model(unet).eval()
        if ema is not None:
            ema.copy_to(model.parameters())
        pipe = make_pipeline(vae, model, inference_scheduler, class_names)
        pipe.save_pretrained(output_dir)
        save_sample_grid(pipe, args, output_dir / "samples.png", accelerator, global_step)
        save_loss_curve(
            run_log.history, output_dir / "loss_curve.png", ("loss",), f"{args.prediction_type} MSE", log_scale=True
        )
        info = {
            "command": "accelerate launch training/train_latent_diffusion.py " + shlex.join(redact(sys.argv[1:])),
            "args": public_args(args),
            "wall_time_seconds": round(run_log.wall_time, 1),
            "train_images_per_second": round(throughput, 1) if throughput else None,
            "steps_per_second": round(throughput / global_batch / args.gradient_accumulation_steps, 2)
            if throughput
            else None,
            "hardware": hardware(),
            "num_processes": world,
            "mixed_precision": args.mixed_precision,
            "epochs": math.ceil(global_step / steps_per_epoch),
            "steps": global_step,
            "dataset_name": args.dataset_name or args.train_data_dir,
            "image_column": image_column,
            "class_column": class_column,
            "class_names": class_names,
            "num_train_images": len(train_split),
            "vae": args.pretrained_vae_model_name_or_path,
            "resolution": resolution,
            "latent_shape": list(latent_shape),
            "scaled_latent_std": round(scaled_std, 4),
            "unet_parameters": sum(p.numel() for p in model.parameters()),
            "inference_scheduler": type(inference_scheduler).__name__,
            "versions": versions(),
        }
        (output_dir / "training_info.json").write_text(json.dumps(info, indent=2))
        write_metrics(output_dir, run_log.history)
        hub.write_model_card(output_dir, repo_id=args.hub_model_id)  # the project's card builder, as train_vae.py
        if args.push_to_hub:
            hub.push_to_hub(output_dir, args.hub_model_id, private=args.hub_private_repo, token=args.hub_token)
    accelerator.end_training()


# ==================================================================== pieces of main, in the order they are used
def load_spatial_vae(name_or_path: str, cache_dir: str | None):
    """The frozen VAE: a vae_hub ``SpatialVAEModel`` or a diffusers ``AutoencoderKL`` (read from its config.json)."""
    try:
        config = AutoencoderKL.load_config(name_or_path, cache_dir=cache_dir)
    except (OSError, ValueError) as err:
        fail(f"cannot load --pretrained_vae_model_name_or_path {name_or_path!r}: {err}")
    class_name = config.get("_class_name")
    if class_name not in SPATIAL_VAE_CLASSES:
        hint = " (a vector-latent VAE: diffusion needs a map of latents)" if class_name == "VAEModel" else ""
        fail(
            f"--pretrained_vae_model_name_or_path {name_or_path!r} is a {class_name}{hint}, not a spatial VAE; "
            f"give a {' or '.join(SPATIAL_VAE_CLASSES)}"
        )
    import vae_hub

    cls = AutoencoderKL if class_name == "AutoencoderKL" else getattr(vae_hub, class_name, None)
    if cls is None:
        fail(f"this vae-hub has no {class_name}: update vae-hub")
    try:
        vae = cls.from_pretrained(name_or_path, cache_dir=cache_dir)
    except (OSError, ValueError) as err:
        fail(f"cannot load --pretrained_vae_model_name_or_path {name_or_path!r}: {err}")
    if getattr(vae.config, "scaling_factor", None) is None:
        fail(f"the VAE {name_or_path!r} has no scaling_factor in its config (the latents' scale for diffusion)")
    return vae.requires_grad_(False).eval()


def find_classes(split: datasets.Dataset, class_column: str | None) -> tuple[str | None, list[str]]:
    """(class column, class names); (None, []) for an unconditional model. Raises DataError for a bad column."""
    if class_column == "none":
        return None, []
    column = class_column or find_label_column(split)
    if column is None:
        return None, []
    features = split.features
    if column not in features:
        raise DataError(f"--class_column {column!r} is not a column; the columns are {list(features)}")
    feature = features[column]
    integers = isinstance(feature, datasets.Value) and feature.dtype.startswith(("int", "uint"))
    if not (isinstance(feature, datasets.ClassLabel) or integers):
        raise DataError(f"column {column!r} holds {feature!r}, not integer class labels")
    values = torch.tensor(split[column], dtype=torch.long)
    if isinstance(feature, datasets.ClassLabel):
        names = list(feature.names)
    else:
        names = [str(i) for i in range(int(values.max()) + 1)]
    if len(names) > MAX_CLASSES:
        raise DataError(f"column {column!r} has {len(names)} classes, more than {MAX_CLASSES}: is it a class label?")
    folded = [name.casefold() for name in names]
    if len(set(folded)) != len(folded):  # the pipeline looks names up case-insensitively
        raise DataError(f"column {column!r} has class names that differ only in case: {names}")
    bad = ((values < 0) | (values >= len(names))).nonzero()
    if len(bad):
        row = int(bad[0])
        raise DataError(
            f"row {row} of column {column!r} has label {int(values[row])}, not a class in 0..{len(names) - 1}"
        )
    return column, names


def build_unet(args: argparse.Namespace, latent_shape: tuple[int, int, int], num_classes: int) -> UNet2DModel:
    """A UNet2DModel on the latents, from --unet_config or the shape flags, with a class embedding for num_classes + 1."""
    channels, size, _ = latent_shape
    if args.unet_config:
        try:
            config = {k: v for k, v in UNet2DModel.load_config(args.unet_config).items() if not k.startswith("_")}
        except (OSError, ValueError) as err:
            fail(f"cannot read --unet_config: {err}")
    else:
        levels = range(len(args.block_out_channels))
        config = {
            "block_out_channels": tuple(args.block_out_channels),
            "layers_per_block": args.layers_per_block,
            "norm_num_groups": args.norm_num_groups,
            "attention_head_dim": args.attention_head_dim,
            "down_block_types": tuple(
                "AttnDownBlock2D" if i in args.attention_levels else "DownBlock2D" for i in levels
            ),
            "up_block_types": tuple(
                "AttnUpBlock2D" if i in args.attention_levels else "UpBlock2D" for i in reversed(levels)
            ),
        }
    config.update(
        sample_size=size,
        in_channels=channels,
        out_channels=channels,
        num_class_embeds=num_classes + 1 if num_classes else None,
        class_embed_type=None,
    )
    factor = 2 ** (len(config.get("block_out_channels", (0,))) - 1)
    if size % factor:
        fail(
            f"the latents are {size}×{size}, not divisible by the UNet's downsampling ({factor}×): "
            "use fewer --block_out_channels levels or another --resolution"
        )
    try:
        return UNet2DModel(**config)
    except (ValueError, TypeError) as err:
        fail(f"bad UNet config: {err}")


def denoising_loss(
    unet,
    noise_scheduler: DDPMScheduler,
    latents: SimpleNamespace,
    labels: torch.Tensor | None,
    idx: torch.Tensor,
    generator: torch.Generator,
    num_classes: int,
    args: argparse.Namespace,
) -> torch.Tensor:
    """The diffusion loss of one batch: MSE of the predicted ε (or v) at random timesteps, Min-SNR weighted if asked.

    Every random draw (posterior ε, diffusion noise, timesteps, label dropout) comes from ``generator``, in this order.
    """
    z = sample_latents(latents, idx, generator)
    device = z.device
    noise = torch.randn(z.shape, generator=generator, device=device)
    timesteps = torch.randint(
        0, noise_scheduler.config.num_train_timesteps, (len(z),), generator=generator, device=device
    )
    class_labels = None
    if num_classes:
        dropped = torch.rand(len(z), generator=generator, device=device) < args.conditioning_dropout_prob
        class_labels = torch.where(dropped, torch.full_like(labels[idx], num_classes), labels[idx])
    noisy = noise_scheduler.add_noise(z, noise, timesteps)
    target = noise if args.prediction_type == "epsilon" else noise_scheduler.get_velocity(z, noise, timesteps)
    prediction = unet(noisy, timesteps, class_labels=class_labels).sample
    return denoising_mse(prediction, target, noise_scheduler, timesteps, args.snr_gamma)


def make_pipeline(vae, unet: UNet2DModel, scheduler, class_names: list[str]) -> LatentDiffusionPipeline:
    pipe = LatentDiffusionPipeline(
        vae=vae, unet=unet, scheduler=scheduler, id2label=dict(enumerate(class_names)) if class_names else None
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def save_sample_grid(
    pipe: LatentDiffusionPipeline, args: argparse.Namespace, path: Path, accelerator: Accelerator, step: int
) -> None:
    """``num_validation_images`` samples of every class, a row per class (of the first ``MAX_GRID_ROWS`` classes; 8 rows
    of unconditional samples for an unconditional model), seeded with --seed; saved as PNG and logged to tensorboard."""
    generator = torch.Generator(device=pipe.unet.device).manual_seed(args.seed)
    rows = list(range(min(pipe.num_classes, MAX_GRID_ROWS))) or None
    images = pipe(
        rows,
        num_images_per_class=args.num_validation_images if rows else 8 * args.num_validation_images,
        num_inference_steps=args.num_inference_steps,
        guidance_scale=args.guidance_scale,
        generator=generator,
        output_type="pt",
    ).images
    grid = make_grid(images * 2 - 1, nrow=args.num_validation_images, scale=2)
    grid.save(path)
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            import numpy as np

            tracker.log_images({"samples": np.asarray(grid.convert("RGB"))[None]}, step=step, dataformats="NHWC")


def write_metrics(output_dir: Path, history: list[dict]) -> None:
    """metrics.json: the training loss at the end. The sample-quality numbers (Fréchet distance, share of samples
    classified as their class: ``python -m vae_hub.evaluate_samples``) are to be added here."""
    metrics = {"final_train_loss": history[-1]["loss"] if history else None, "loss": "denoising MSE (see args)"}
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    try:
        main(arguments)  # parsed above, before the heavy imports
    except DataError as error:
        fail(str(error).strip().splitlines()[-1].split("DataError: ", 1)[-1])
