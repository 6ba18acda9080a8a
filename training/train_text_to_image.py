#!/usr/bin/env python
"""Train a miniature Stable Diffusion from scratch with 🤗 Accelerate: a CLIPTextModel and a UNet2DConditionModel,
jointly, on a frozen AutoencoderKL's latents of a captioned image dataset.

    accelerate launch training/train_text_to_image.py --pretrained_vae_model_name_or_path emoji-vae \\
        --dataset_name ../shared/datasets/emoji --caption_column text --output_dir emoji-sd

The output folder is exactly what ``diffusers.StableDiffusionPipeline.save_pretrained`` writes (``model_index.json`` +
``vae/ text_encoder/ tokenizer/ unet/ scheduler/``; no safety checker), so diffusers alone loads it:
``StableDiffusionPipeline.from_pretrained(folder)`` (and the Img2Img and Inpaint pipelines, on the same files). Next to
it: ``samples.png`` (a row per --validation_prompts prompt), ``loss_curve.png``, ``training_info.json``,
``metrics.json`` and a model card that credits the training data as its README asks.

The text encoder is new and trained with the UNet, or, with --pretrained_text_encoder_model_name_or_path, the text
tower of a mini CLIP pre-trained contrastively (``training/train_clip.py``) with its tokenizer, kept frozen as Stable
Diffusion keeps CLIP's.

It reads top to bottom: ``parse_args()`` → ``main()``: VAE (frozen) → data and captions → tokenizer learned from the
captions (``vae_hub.text_tokenizer``; or the mini CLIP's) → latents, encoded once → text encoder and UNet → optimiser → (resume) → loop
with checkpoints and validation grids → pipeline ``save_pretrained``, grids, record, card, push.

Classifier-free guidance: each caption is replaced by the empty caption "" with probability
``--conditioning_dropout_prob``, the unconditional input the pipelines give for ``guidance_scale > 1`` (and a
negative prompt replaces); ``--conditioning_dropout_prob 1`` trains the unconditional baseline. Exact resume and several processes work as in ``train_latent_diffusion.py``: data order
is a pure function of (seed, epoch), and a batch's random draws (posterior ε, noise, noise offset, timesteps,
caption dropout) come from a generator seeded by (seed, process, batch).
"""

import argparse
import json
import math
import shlex
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

from vae_hub.constants import MIN_VOCAB_SIZE
from vae_hub.training_args import (
    DIFFUSION_COUNTS,
    DIFFUSION_REALS,
    INFERENCE_SCHEDULERS,
    add_data_source_args,
    add_dataset_credit_arg,
    add_diffusion_args,
    add_ema_args,
    add_optimizer_args,
    add_output_args,
    add_unet_args,
    check_diffusion_args,
    check_shared_args,
)


FINAL_FILES = ("model_index.json",)  # a finished run's pipeline
NUM_DEFAULT_PROMPTS = 4  # validation prompts taken from the captions when --validation_prompts is not given


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    # allow_abbrev=False: an abbreviated --hub_tok would slip past the redaction of --hub_token
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        allow_abbrev=False,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = p.add_argument_group("data")
    add_data_source_args(data)
    data.add_argument("--caption_column", type=str, default="text", help="The column of captions.")
    add_dataset_credit_arg(data)
    data.add_argument("--resolution", type=int, default=None, help="Image size; default: the VAE's sample_size.")
    data.add_argument("--max_train_samples", type=int, default=None)
    data.add_argument("--cache_dir", type=str, default=None)
    data.add_argument(
        "--encode_batch_size", type=int, default=256, help="Images per VAE call when encoding the data once."
    )

    text = p.add_argument_group("tokenizer and text encoder (a CLIPTextModel, trained with the UNet)")
    text.add_argument(
        "--pretrained_text_encoder_model_name_or_path",
        type=str,
        default=None,
        help="A mini CLIP folder (training/train_clip.py; or any CLIPTextModel folder with a tokenizer/): "
        "its text tower and tokenizer, kept frozen as Stable Diffusion keeps CLIP's, instead of a "
        "new text encoder trained with the UNet. The --tokenizer_vocab_size and --text_* flags are "
        "then unused.",
    )
    text.add_argument(
        "--tokenizer_vocab_size",
        type=int,
        default=2048,
        help=f"BPE learned from the training captions: at most this many tokens (≥ {MIN_VOCAB_SIZE}).",
    )
    text.add_argument("--text_hidden_size", type=int, default=128, help="Also the UNet's cross_attention_dim.")
    text.add_argument("--text_layers", type=int, default=2)
    text.add_argument("--text_heads", type=int, default=4)

    model = p.add_argument_group("model")
    model.add_argument(
        "--pretrained_vae_model_name_or_path",
        type=str,
        required=True,
        help="A diffusers AutoencoderKL folder or Hub id, kept frozen.",
    )
    add_unet_args(
        model,
        attention_levels=[0, 1],
        attention_help="cross-attention to the text",
        dropout_help='the empty caption ""',
    )

    add_diffusion_args(
        p.add_argument_group("diffusion"),
        grids="validation grids",
        num_inference_steps=25,
        guidance_scale=4.0,
        noise_offset=True,
    )

    opt = p.add_argument_group("optimisation")
    add_optimizer_args(
        opt, num_train_epochs=100, learning_rate=1e-4, lr_warmup_steps=500, adam_weight_decay=1e-2, max_grad_norm=1.0
    )
    add_ema_args(opt, ema_help="Keep an EMA (diffusers' EMAModel) of the UNet and of the text encoder, and ship it.")
    opt.add_argument("--seed", type=int, default=0)

    state = p.add_argument_group("outputs and state")
    add_output_args(state, validation_epochs=5, validation_help="Save a grid for --validation_prompts every N epochs.")
    state.add_argument(
        "--validation_prompts",
        type=str,
        nargs="+",
        default=None,
        help=f"Prompts of the validation grid, a row each; default: the first {NUM_DEFAULT_PROMPTS} "
        "distinct training captions.",
    )
    state.add_argument("--num_validation_images", type=int, default=4, help="Images per prompt in the grids.")

    args = p.parse_args(argv)
    check_shared_args(
        p,
        args,
        counts=("num_validation_images", *DIFFUSION_COUNTS, "text_hidden_size", "text_layers", "text_heads"),
        reals=(*DIFFUSION_REALS, "noise_offset"),
    )
    check_diffusion_args(p, args)
    if args.tokenizer_vocab_size < MIN_VOCAB_SIZE:
        p.error(
            f"--tokenizer_vocab_size must be at least {MIN_VOCAB_SIZE} (every byte, alone and at a word's end, "
            f"and bos/eos), got {args.tokenizer_vocab_size}"
        )
    if args.text_hidden_size % args.text_heads:
        p.error(f"--text_hidden_size ({args.text_hidden_size}) must be a multiple of --text_heads ({args.text_heads})")
    if args.validation_prompts is not None and not all(prompt.strip() for prompt in args.validation_prompts):
        p.error("--validation_prompts must not be empty strings")
    return args


if __name__ == "__main__":  # first, so that --help and a bad flag come back before the imports below load torch
    arguments = parse_args()

import diffusers
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm
from transformers import CLIPTextModel, CLIPTokenizer

from vae_hub.credits import dataset_licence_section
from vae_hub.data import (
    DataError,
    captioned_rows,
    dataset_license,
    decode_images,
    find_image_column,
    load_image_dataset,
)
from vae_hub.images import make_grid
from vae_hub.mini_clip import clip_text_config, load_text_encoder
from vae_hub.posteriors import encode_posterior, latent_std, probe_latent_shape, sample_latents
from vae_hub.text_to_image_card import push_pipeline, write_card
from vae_hub.text_tokenizer import tokenize, train_caption_tokenizer, write_vocab_files
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
    text_versions,
    weights_are_finite,
)


logger = get_logger(__name__)


def main(args: argparse.Namespace) -> None:
    output_dir = Path(args.output_dir)
    accelerator = start_run(args, FINAL_FILES)  # seeds the text encoder and UNet initialisation

    # ---------------------------------------------------------------- VAE (frozen), data, tokenizer
    vae = load_autoencoder_kl(args.pretrained_vae_model_name_or_path, args.cache_dir).to(accelerator.device)
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
    train_split, captions, dropped = captioned_rows(train_split, args.caption_column)
    if dropped:
        logger.warning(
            f"dropped {dropped} of {dropped + len(captions)} rows with an empty or missing caption "
            f"(column {args.caption_column!r})",
            main_process_only=True,
        )
    if args.pretrained_text_encoder_model_name_or_path:  # frozen: its hidden states never change
        try:
            text_encoder, tokenizer = load_text_encoder(args.pretrained_text_encoder_model_name_or_path)
        except ValueError as err:
            fail(f"--pretrained_text_encoder_model_name_or_path: {err}")
        text_encoder.requires_grad_(False).eval().to(accelerator.device)
    else:
        # The same captions give the same merges on every process and after a resume: nothing to share or checkpoint.
        tokenizer = train_caption_tokenizer(captions, vocab_size=args.tokenizer_vocab_size)
        text_encoder = build_text_encoder(args, tokenizer)
    train_text_encoder = args.pretrained_text_encoder_model_name_or_path is None
    unet = build_unet(args, latent_shape, text_encoder.config.hidden_size)

    world, rank = accelerator.num_processes, accelerator.process_index
    global_batch = args.train_batch_size * world
    batches_per_epoch = len(train_split) // global_batch
    steps_per_epoch = batches_per_epoch // args.gradient_accumulation_steps
    if steps_per_epoch == 0:
        fail(
            f"the train split has {len(train_split)} captioned images, fewer than one optimisation step needs "
            f"({global_batch} per batch × {args.gradient_accumulation_steps} accumulation): lower --train_batch_size"
        )
    max_train_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(max_train_steps / steps_per_epoch)
    prompts = args.validation_prompts or list(dict.fromkeys(captions))[:NUM_DEFAULT_PROMPTS]

    show = accelerator.is_local_main_process
    # Any image mode (grayscale, palette, RGBA) is converted to the VAE's channels here.
    images = decode_images(train_split, image_column, resolution, vae.config.in_channels, None, "decoding train", show)
    latents = encode_posterior(vae, images.images, args.encode_batch_size, accelerator.device, show)
    del images
    caption_ids = tokenize(tokenizer, captions).to(accelerator.device)  # (N, model_max_length), as the pipeline pads
    empty_ids = tokenize(tokenizer, [""]).to(accelerator.device)  # (1, model_max_length): the unconditional input
    scaled_std = latent_std(latents, args.seed)
    if not 0.5 < scaled_std < 2:
        logger.warning(
            f"the scaled latents have std {scaled_std:.3g}, far from 1: the VAE's scaling_factor "
            f"({vae.config.scaling_factor}) does not fit it; diffusion trains best on unit-variance latents",
            main_process_only=True,
        )

    # clip_sample=False: latents are not images in [-1, 1] (DDPM's and DDIM's default would clip their x0 there);
    # steps_offset=1: Stable Diffusion's, which StableDiffusionPipeline otherwise warns about and changes on loading
    noise_scheduler = DDPMScheduler(
        num_train_timesteps=args.ddpm_num_steps,
        beta_schedule=args.ddpm_beta_schedule,
        prediction_type=args.prediction_type,
        clip_sample=False,
        steps_offset=1,
    )
    inference_scheduler_class = getattr(diffusers, INFERENCE_SCHEDULERS[args.inference_scheduler])
    inference_scheduler = inference_scheduler_class.from_config(noise_scheduler.config)

    # ---------------------------------------------------------------- optimisation
    parameters = [*unet.parameters(), *(text_encoder.parameters() if train_text_encoder else [])]
    optimizer = torch.optim.AdamW(
        parameters,
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.adam_weight_decay,
        eps=args.adam_epsilon,
    )
    # Stepped by us once per optimisation step, so warm-up and length are in optimisation steps on any world size.
    lr_scheduler = get_scheduler(
        args.lr_scheduler, optimizer, num_warmup_steps=args.lr_warmup_steps, num_training_steps=max_train_steps
    )
    if train_text_encoder:
        unet, text_encoder, optimizer = accelerator.prepare(unet, text_encoder, optimizer)
    else:
        unet, optimizer = accelerator.prepare(unet, optimizer)
    trained = {"unet": unet, "text_encoder": text_encoder} if train_text_encoder else {"unet": unet}
    noise = NoiseGenerator(accelerator.device, args.seed, rank)  # all random draws of a batch, per process
    accelerator.register_for_checkpointing(lr_scheduler, noise)
    emas = {}
    if args.use_ema:
        for name, model in trained.items():
            unwrapped = accelerator.unwrap_model(model)
            emas[name] = EMAModel(
                unwrapped.parameters(),
                decay=args.ema_max_decay,
                use_ema_warmup=True,
                inv_gamma=args.ema_inv_gamma,
                power=args.ema_power,
                foreach=True,
                model_cls=type(unwrapped),
                model_config=unwrapped.config,
            )
            emas[name].to(accelerator.device)
            accelerator.register_for_checkpointing(emas[name])

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
        accelerator.init_trackers("train_text_to_image", config=loggable_config(public_args(args)))

    def pipeline() -> StableDiffusionPipeline:
        """The pipeline of the models as they are now (unwrapped, in eval mode)."""
        return make_pipeline(
            vae,
            accelerator.unwrap_model(text_encoder).eval(),
            tokenizer,
            accelerator.unwrap_model(unet).eval(),
            inference_scheduler,
        )

    def sample_grid(step: int) -> None:
        """The validation grid, a row per prompt (main process; the EMA weights when kept)."""
        if not accelerator.is_main_process:
            return
        pipe = pipeline()
        with ema_weights(emas.get("unet"), pipe.unet), ema_weights(emas.get("text_encoder"), pipe.text_encoder):
            save_sample_grid(pipe, prompts, args, output_dir / "samples.png", accelerator, step)
        for model in trained.values():
            model.train()

    # ---------------------------------------------------------------- training loop
    progress = tqdm(total=max_train_steps, initial=global_step, desc="steps", disable=not show)
    sums = LossSums(accelerator.device, ("loss",))
    timed_steps, timed_since, timed_until, start_step = 0, None, None, global_step
    batches_done = global_step * args.gradient_accumulation_steps  # numbers each batch's random stream
    usable_batches = steps_per_epoch * args.gradient_accumulation_steps
    # a run resumed at (or past) its --max_train_steps trains no further step: it only finishes
    first_epoch = global_step // steps_per_epoch if global_step < max_train_steps else num_epochs
    text = SimpleNamespace(ids=caption_ids, empty=empty_ids)
    for epoch in range(first_epoch, num_epochs):
        for model in trained.values():
            model.train()
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
            with accelerator.accumulate(*trained.values()):
                loss = denoising_loss(
                    unet, text_encoder, noise_scheduler, latents, text, idx, noise.for_batch(batches_done), args
                )
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(parameters, args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            sums.add(SimpleNamespace(loss=loss))
            batches_done += 1
            if not accelerator.sync_gradients:
                continue
            lr_scheduler.step()
            for name, model in trained.items():
                if name in emas:
                    emas[name].step(accelerator.unwrap_model(model).parameters())
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
                if not (math.isfinite(logs["loss"]) and weights_are_finite(unet) and weights_are_finite(text_encoder)):
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
        pipe = pipeline()
        for name, ema in emas.items():
            ema.copy_to(getattr(pipe, name).parameters())
        pipe.save_pretrained(output_dir)
        write_vocab_files(tokenizer, output_dir / "tokenizer")  # vocab.json, merges.txt: what older readers need
        save_sample_grid(pipe, prompts, args, output_dir / "samples.png", accelerator, global_step)
        save_loss_curve(
            run_log.history, output_dir / "loss_curve.png", ("loss",), f"{args.prediction_type} MSE", log_scale=True
        )
        info = {
            "command": "accelerate launch training/train_text_to_image.py " + shlex.join(redact(sys.argv[1:])),
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
            "dataset_license": dataset_license(args.dataset_name),
            "dataset_licence_section": dataset_licence_section(args.dataset_name),
            "dataset_credit": args.dataset_credit,
            "image_column": image_column,
            "caption_column": args.caption_column,
            "num_train_images": len(train_split),
            "dropped_empty_captions": dropped,
            "vae": args.pretrained_vae_model_name_or_path,
            "resolution": resolution,
            "latent_shape": list(latent_shape),
            "scaled_latent_std": round(scaled_std, 4),
            "tokenizer_vocab_size": len(tokenizer),
            "model_max_length": tokenizer.model_max_length,
            "text_encoder_parameters": sum(p.numel() for p in pipe.text_encoder.parameters()),
            "text_encoder": args.pretrained_text_encoder_model_name_or_path or "new, trained with the UNet",
            "text_encoder_frozen": not train_text_encoder,
            "unet_parameters": sum(p.numel() for p in pipe.unet.parameters()),
            "inference_scheduler": type(inference_scheduler).__name__,
            "validation_prompts": prompts,
            "versions": text_versions(),
        }
        (output_dir / "training_info.json").write_text(json.dumps(info, indent=2))
        metrics = {
            "final_train_loss": run_log.history[-1]["loss"] if run_log.history else None,
            "loss": "denoising MSE (see args)",
        }
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        write_card(output_dir, repo_id=args.hub_model_id)
        if args.push_to_hub:
            push_pipeline(output_dir, args.hub_model_id, private=args.hub_private_repo, token=args.hub_token)
    accelerator.end_training()


# ==================================================================== pieces of main, in the order they are used
def load_autoencoder_kl(name_or_path: str, cache_dir: str | None) -> AutoencoderKL:
    """The frozen VAE: a diffusers ``AutoencoderKL`` (what ``StableDiffusionPipeline`` loads without our code)."""
    try:
        config = AutoencoderKL.load_config(name_or_path, cache_dir=cache_dir)
    except (OSError, ValueError) as err:
        fail(f"cannot load --pretrained_vae_model_name_or_path {name_or_path!r}: {err}")
    class_name = config.get("_class_name")
    if class_name != "AutoencoderKL":
        fail(
            f"--pretrained_vae_model_name_or_path {name_or_path!r} is a {class_name}, not an AutoencoderKL: a "
            "StableDiffusionPipeline folder must load without vae-hub; train one with train_vae.py "
            "--model_type autoencoderkl or take a diffusers AutoencoderKL"
        )
    try:
        vae = AutoencoderKL.from_pretrained(name_or_path, cache_dir=cache_dir)
    except (OSError, ValueError) as err:
        fail(f"cannot load --pretrained_vae_model_name_or_path {name_or_path!r}: {err}")
    if vae.config.scaling_factor is None:
        fail(f"the VAE {name_or_path!r} has no scaling_factor in its config (the latents' scale for diffusion)")
    return vae.requires_grad_(False).eval()


def build_text_encoder(args: argparse.Namespace, tokenizer: CLIPTokenizer) -> CLIPTextModel:
    """A small ``CLIPTextModel`` for ``tokenizer``: its vocabulary, its special tokens, ``model_max_length`` positions."""
    return CLIPTextModel(clip_text_config(tokenizer, args.text_hidden_size, args.text_layers, args.text_heads))


def build_unet(
    args: argparse.Namespace, latent_shape: tuple[int, int, int], cross_attention_dim: int
) -> UNet2DConditionModel:
    """A ``UNet2DConditionModel`` on the latents, cross-attending at --attention_levels to the text encoder's hidden
    states (``cross_attention_dim`` wide: its hidden_size)."""
    channels, size, _ = latent_shape
    levels = range(len(args.block_out_channels))
    factor = 2 ** (len(args.block_out_channels) - 1)
    if size % factor:
        fail(
            f"the latents are {size}×{size}, not divisible by the UNet's downsampling ({factor}×): "
            "use fewer --block_out_channels levels or another --resolution"
        )
    try:
        return UNet2DConditionModel(
            sample_size=size,
            in_channels=channels,
            out_channels=channels,
            block_out_channels=tuple(args.block_out_channels),
            layers_per_block=args.layers_per_block,
            norm_num_groups=args.norm_num_groups,
            attention_head_dim=args.attention_head_dim,
            cross_attention_dim=cross_attention_dim,
            down_block_types=tuple(
                "CrossAttnDownBlock2D" if i in args.attention_levels else "DownBlock2D" for i in levels
            ),
            up_block_types=tuple(
                "CrossAttnUpBlock2D" if i in args.attention_levels else "UpBlock2D" for i in reversed(levels)
            ),
        )
    except (ValueError, TypeError) as err:
        fail(f"bad UNet config: {err}")


def denoising_loss(
    unet,
    text_encoder,
    noise_scheduler: DDPMScheduler,
    latents: SimpleNamespace,
    text: SimpleNamespace,
    idx: torch.Tensor,
    generator: torch.Generator,
    args: argparse.Namespace,
) -> torch.Tensor:
    """The diffusion loss of one batch, text encoder included: MSE of the predicted ε (or v) at random timesteps.

    Every random draw (posterior ε, diffusion noise, noise offset, timesteps, caption dropout) comes from
    ``generator``, in this order. A dropped caption is the empty caption's ids (``text.empty``).
    """
    z = sample_latents(latents, idx, generator)
    device = z.device
    noise = torch.randn(z.shape, generator=generator, device=device)
    if args.noise_offset:
        noise = noise + args.noise_offset * torch.randn((*z.shape[:2], 1, 1), generator=generator, device=device)
    timesteps = torch.randint(
        0, noise_scheduler.config.num_train_timesteps, (len(z),), generator=generator, device=device
    )
    dropped = torch.rand(len(z), generator=generator, device=device) < args.conditioning_dropout_prob
    input_ids = torch.where(dropped[:, None], text.empty, text.ids[idx])
    encoder_hidden_states = text_encoder(input_ids)[0]  # last_hidden_state, what the pipeline gives the UNet
    noisy = noise_scheduler.add_noise(z, noise, timesteps)
    target = noise if args.prediction_type == "epsilon" else noise_scheduler.get_velocity(z, noise, timesteps)
    prediction = unet(noisy, timesteps, encoder_hidden_states=encoder_hidden_states).sample
    return denoising_mse(prediction, target, noise_scheduler, timesteps, args.snr_gamma)


def make_pipeline(
    vae: AutoencoderKL, text_encoder: CLIPTextModel, tokenizer: CLIPTokenizer, unet: UNet2DConditionModel, scheduler
) -> StableDiffusionPipeline:
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def save_sample_grid(
    pipe: StableDiffusionPipeline,
    prompts: list[str],
    args: argparse.Namespace,
    path: Path,
    accelerator: Accelerator,
    step: int,
) -> None:
    """``num_validation_images`` samples of every prompt, a row per prompt, seeded with --seed; saved as PNG and
    logged to tensorboard."""
    generator = torch.Generator(device=pipe.unet.device).manual_seed(args.seed)
    images = pipe(
        prompts,
        num_images_per_prompt=args.num_validation_images,
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


if __name__ == "__main__":
    try:
        main(arguments)  # parsed above, before the heavy imports
    except DataError as error:
        fail(str(error).strip().splitlines()[-1].split("DataError: ", 1)[-1])
