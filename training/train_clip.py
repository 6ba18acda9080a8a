#!/usr/bin/env python
"""Pre-train a mini CLIP contrastively on image–caption pairs with 🤗 Accelerate: transformers' own ``CLIPModel``,
small, with a caption tokenizer learned from the training captions.

    accelerate launch training/train_clip.py --dataset_name ../shared/datasets/emoji --caption_column text \\
        --output_dir emoji-clip

Any dataset with an image column and a caption column. The output folder (``vae_hub.mini_clip``) is read by
transformers alone: ``CLIPModel.from_pretrained(folder)``, its text tower alone as ``CLIPTextModel.from_pretrained
(folder)`` (what ``train_text_to_image.py --pretrained_text_encoder_model_name_or_path`` takes, frozen, as Stable
Diffusion takes OpenAI's), ``CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")`` and
``CLIPImageProcessor.from_pretrained(folder)`` (pixels / 127.5 − 1 at --resolution). Next to it: ``loss_curve.png``,
``training_info.json`` (the exact command) and ``metrics.json``: on the held-out split, measured once at the end,
image→text and text→image top-1 retrieval among groups of --num_candidates pairs, and the real images' CLIP score and
R-precision (``vae_hub.text_image_metrics``; the ceiling a text-to-image model is measured against).

It reads top to bottom: ``parse_args()`` → ``main()``: data and captions → tokenizer learned from the captions →
images decoded once → CLIPModel → optimiser → (resume) → loop with checkpoints and held-out retrieval every
--validation_epochs → ``save_mini_clip``, curve, records.

The loss is CLIPModel's own (``return_loss=True``): symmetric cross-entropy over the batch's image–caption
similarities, scaled by the learned temperature (clamped at 100, as CLIP does). Each process contrasts its own batch
(no gathering across processes), and with --gradient_accumulation_steps each micro-batch its own: the negatives are
the --train_batch_size others. Exact resume as in the other scripts: data order is a pure function of (seed, epoch)
and nothing else is random, so a resumed run ends bit-identical to an uninterrupted one (one process, CPU).
"""

import argparse
import json
import math
import shlex
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

from vae_hub.constants import MIN_VOCAB_SIZE, NUM_CANDIDATES
from vae_hub.training_args import add_data_source_args, add_optimizer_args, add_output_args, check_shared_args


FINAL_FILES = ("config.json",)  # a finished run's model
MAX_LOGIT_SCALE = math.log(100)  # CLIP's clamp of the learned temperature: logits at most 100 × cosine


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
    data.add_argument("--resolution", type=int, default=64, help="Image size: the vision tower's image_size.")
    data.add_argument("--max_train_samples", type=int, default=None)
    data.add_argument(
        "--validation_split",
        type=float,
        default=0.1,
        help="Fraction of train held out when the dataset has no test/validation split.",
    )
    data.add_argument("--cache_dir", type=str, default=None)

    model = p.add_argument_group("tokenizer and model (a CLIPModel)")
    model.add_argument(
        "--tokenizer_vocab_size",
        type=int,
        default=2048,
        help=f"BPE learned from the training captions: at most this many tokens (≥ {MIN_VOCAB_SIZE}).",
    )
    model.add_argument(
        "--text_hidden_size",
        type=int,
        default=128,
        help="Also the cross_attention_dim of a UNet that takes this text tower.",
    )
    model.add_argument("--text_layers", type=int, default=2)
    model.add_argument("--text_heads", type=int, default=4)
    model.add_argument("--vision_hidden_size", type=int, default=128)
    model.add_argument("--vision_layers", type=int, default=4)
    model.add_argument("--vision_heads", type=int, default=4)
    model.add_argument(
        "--patch_size", type=int, default=8, help="The ViT's patches: (resolution / patch_size)² tokens."
    )
    model.add_argument("--projection_dim", type=int, default=64, help="Width of the shared image–text space.")

    opt = p.add_argument_group("optimisation")
    add_optimizer_args(
        opt, num_train_epochs=50, learning_rate=5e-4, lr_warmup_steps=200, adam_weight_decay=0.1, max_grad_norm=1.0
    )
    opt.add_argument("--seed", type=int, default=0)

    state = p.add_argument_group("outputs, state and evaluation")
    add_output_args(
        state, validation_epochs=5, validation_help="Log held-out retrieval every N epochs (it never steers training)."
    )
    state.add_argument(
        "--num_candidates",
        type=int,
        default=NUM_CANDIDATES,
        help="Held-out retrieval among groups of this many pairs; R-precision among this many captions.",
    )
    state.add_argument("--eval_batch_size", type=int, default=256)

    args = p.parse_args(argv)
    check_shared_args(
        p,
        args,
        counts=(
            "text_hidden_size",
            "text_layers",
            "text_heads",
            "vision_hidden_size",
            "vision_layers",
            "vision_heads",
            "patch_size",
            "projection_dim",
            "eval_batch_size",
        ),
    )
    if args.push_to_hub:
        p.error(
            "train_clip.py does not push; upload the folder with `huggingface-cli upload` "
            "(leave out checkpoint-*/ and logs/)"
        )
    if args.tokenizer_vocab_size < MIN_VOCAB_SIZE:
        p.error(
            f"--tokenizer_vocab_size must be at least {MIN_VOCAB_SIZE} (every byte, alone and at a word's end, "
            f"and bos/eos), got {args.tokenizer_vocab_size}"
        )
    for tower in ("text", "vision"):
        hidden, heads = getattr(args, f"{tower}_hidden_size"), getattr(args, f"{tower}_heads")
        if hidden % heads:
            p.error(f"--{tower}_hidden_size ({hidden}) must be a multiple of --{tower}_heads ({heads})")
    if args.resolution % args.patch_size:
        p.error(f"--resolution ({args.resolution}) must be a multiple of --patch_size ({args.patch_size})")
    if args.num_candidates < 2:
        p.error(f"--num_candidates must be at least 2, got {args.num_candidates}")
    return args


if __name__ == "__main__":  # first, so that --help and a bad flag come back before the imports below load torch
    arguments = parse_args()

import torch
from accelerate.logging import get_logger
from diffusers.optimization import get_scheduler
from tqdm.auto import tqdm
from transformers import CLIPModel

from vae_hub.data import DataError, captioned_rows, decode_images, find_image_column, load_image_dataset, select_splits
from vae_hub.images import uint8_to_float
from vae_hub.mini_clip import MiniClip, mini_clip_config, save_mini_clip
from vae_hub.text_image_metrics import image_features, retrieval_accuracy, text_features, text_image_alignment
from vae_hub.text_tokenizer import tokenize, train_caption_tokenizer
from vae_hub.training_utils import (
    LossSums,
    RunLog,
    StepCounter,
    device_time,
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
    accelerator = start_run(args, FINAL_FILES)  # seeds the model's initialisation

    # ---------------------------------------------------------------- data, captions, tokenizer
    with accelerator.main_process_first():
        dataset = load_image_dataset(args.dataset_name, args.dataset_config_name, args.train_data_dir, args.cache_dir)
    train_split, test_split, test_name = select_splits(dataset, args.validation_split, args.seed)
    if args.max_train_samples:
        train_split = train_split.shuffle(seed=args.seed).select(range(min(args.max_train_samples, len(train_split))))
    image_column = find_image_column(train_split, args.image_column)
    train_split, captions, dropped = captioned_rows(train_split, args.caption_column)
    test_split, test_captions, test_dropped = captioned_rows(test_split, args.caption_column)
    if dropped or test_dropped:
        logger.warning(
            f"dropped {dropped} train and {test_dropped} {test_name} rows with an empty or missing caption "
            f"(column {args.caption_column!r})",
            main_process_only=True,
        )
    # The same captions give the same merges on every process and after a resume: nothing to share or checkpoint.
    tokenizer = train_caption_tokenizer(captions, vocab_size=args.tokenizer_vocab_size)
    model = CLIPModel(
        mini_clip_config(
            tokenizer,
            text_hidden_size=args.text_hidden_size,
            text_layers=args.text_layers,
            text_heads=args.text_heads,
            vision_hidden_size=args.vision_hidden_size,
            vision_layers=args.vision_layers,
            vision_heads=args.vision_heads,
            image_size=args.resolution,
            patch_size=args.patch_size,
            projection_dim=args.projection_dim,
        )
    )

    world, rank = accelerator.num_processes, accelerator.process_index
    global_batch = args.train_batch_size * world
    steps_per_epoch = len(train_split) // global_batch // args.gradient_accumulation_steps
    if steps_per_epoch == 0:
        fail(
            f"the train split has {len(train_split)} captioned images, fewer than one optimisation step needs "
            f"({global_batch} per batch × {args.gradient_accumulation_steps} accumulation): lower --train_batch_size"
        )
    max_train_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(max_train_steps / steps_per_epoch)

    show = accelerator.is_local_main_process
    # Any image mode (grayscale, palette, RGBA) is converted to RGB here, once.
    images = decode_images(train_split, image_column, args.resolution, 3, None, "decoding train", show).images
    test_images = decode_images(
        test_split, image_column, args.resolution, 3, None, f"decoding {test_name}", show
    ).images
    images = images.to(accelerator.device)
    caption_ids = tokenize(tokenizer, captions).to(accelerator.device)  # (N, model_max_length), as the pipelines pad

    # ---------------------------------------------------------------- optimisation
    optimizer = torch.optim.AdamW(
        model.parameters(),
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
    counter = StepCounter()
    accelerator.register_for_checkpointing(lr_scheduler, counter)

    global_step, run_log = 0, RunLog()
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(output_dir, args.resume_from_checkpoint)
        accelerator.print(f"Resuming from {checkpoint}")
        accelerator.load_state(str(checkpoint))
        global_step, run_log = counter.global_step, RunLog.resume(checkpoint)
    if accelerator.is_main_process:  # the inputs are checked: from here on the run writes its folder
        if args.overwrite_output_dir and not args.resume_from_checkpoint:
            for stale in output_dir.glob("checkpoint-*"):  # the old run's: "latest" must never pick them up
                shutil.rmtree(stale)
        output_dir.mkdir(parents=True, exist_ok=True)
        accelerator.init_trackers("train_clip", config=loggable_config(public_args(args)))
    held_out = SimpleNamespace(images=test_images, captions=test_captions)

    # ---------------------------------------------------------------- training loop
    progress = tqdm(total=max_train_steps, initial=global_step, desc="steps", disable=not show)
    sums = LossSums(accelerator.device, ("loss",))
    timed_steps, timed_since, timed_until, start_step = 0, None, None, global_step
    usable_batches = steps_per_epoch * args.gradient_accumulation_steps
    # a run resumed at (or past) its --max_train_steps trains no further step: it only finishes
    first_epoch = global_step // steps_per_epoch if global_step < max_train_steps else num_epochs
    for epoch in range(first_epoch, num_epochs):
        model.train()
        skip = (
            (global_step - epoch * steps_per_epoch) * args.gradient_accumulation_steps if epoch == first_epoch else 0
        )
        for idx in epoch_batch_indices(
            len(images), epoch, args.seed, args.train_batch_size, rank, world, usable_batches, skip, accelerator.device
        ):
            with accelerator.accumulate(model):
                loss = model(
                    input_ids=caption_ids[idx], pixel_values=uint8_to_float(images[idx]), return_loss=True
                ).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            sums.add(SimpleNamespace(loss=loss))
            if not accelerator.sync_gradients:
                continue
            with torch.no_grad():
                accelerator.unwrap_model(model).logit_scale.clamp_(0, MAX_LOGIT_SCALE)
            lr_scheduler.step()
            global_step += 1
            counter.global_step = global_step
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
                if not (math.isfinite(logs["loss"]) and weights_are_finite(model)):
                    last = latest_checkpoint(output_dir)
                    fail(
                        f"non-finite loss or weights at step {global_step} ({logs}); stopped on every process. "
                        f"Last good checkpoint: {last or 'none'}. Try a lower --learning_rate or --max_grad_norm."
                    )
                logs.update(
                    lr=lr_scheduler.get_last_lr()[0],
                    epoch=epoch,
                    logit_scale=accelerator.unwrap_model(model).logit_scale.exp().item(),
                )
                accelerator.log(logs, step=global_step)
                run_log.append(global_step, logs)
                progress.set_postfix(loss=f"{logs['loss']:.4f}")
            if at_checkpoint:
                save_checkpoint(accelerator, output_dir, global_step, args.checkpoints_total_limit, run_log)
            if global_step >= max_train_steps:
                break
        if (epoch + 1) % args.validation_epochs == 0 and global_step < max_train_steps and accelerator.is_main_process:
            scores = held_out_metrics(MiniClip(accelerator.unwrap_model(model), tokenizer), held_out, args)
            accelerator.log(
                {f"{test_name}_{k}": v for k, v in scores.items() if isinstance(v, float)}, step=global_step
            )
            model.train()
        if global_step >= max_train_steps:
            break
    progress.close()
    throughput = None  # pairs/s at steady state
    if timed_until is not None and timed_steps:
        throughput = timed_steps * global_batch * args.gradient_accumulation_steps / (timed_until - timed_since)

    # ---------------------------------------------------------------- finish: model, curve, records
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        clip = MiniClip(accelerator.unwrap_model(model), tokenizer)
        save_mini_clip(clip.model, tokenizer, output_dir)
        save_loss_curve(
            run_log.history,
            output_dir / "loss_curve.png",
            ("loss",),
            "contrastive loss (nats, image↔text)",
            log_scale=True,
        )
        metrics = {
            "final_train_loss": run_log.history[-1]["loss"] if run_log.history else None,
            "logit_scale": clip.model.logit_scale.exp().item(),
            "test_split": test_name,
            **held_out_metrics(clip, held_out, args),
        }
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        info = {
            "command": "accelerate launch training/train_clip.py " + shlex.join(redact(sys.argv[1:])),
            "args": public_args(args),
            "wall_time_seconds": round(run_log.wall_time, 1),
            "train_pairs_per_second": round(throughput, 1) if throughput else None,
            "hardware": hardware(),
            "num_processes": world,
            "mixed_precision": args.mixed_precision,
            "epochs": math.ceil(global_step / steps_per_epoch),
            "steps": global_step,
            "dataset_name": args.dataset_name or args.train_data_dir,
            "image_column": image_column,
            "caption_column": args.caption_column,
            "num_train_images": len(train_split),
            "dropped_empty_captions": dropped,
            "test_split": test_name,
            "num_test_images": len(test_split),
            "tokenizer_vocab_size": len(tokenizer),
            "model_max_length": tokenizer.model_max_length,
            "parameters": sum(p.numel() for p in clip.model.parameters()),
            "text_parameters": sum(p.numel() for p in clip.model.text_model.parameters()),
            "vision_parameters": sum(p.numel() for p in clip.model.vision_model.parameters()),
            "versions": text_versions(),
        }
        (output_dir / "training_info.json").write_text(json.dumps(info, indent=2) + "\n")
        accelerator.print(
            f"held-out ({test_name}): image→text top-1 {metrics['image_to_text_top1']:.3f}, "
            f"text→image {metrics['text_to_image_top1']:.3f} (groups of {metrics['group_size']}); "
            f"saved to {output_dir}"
        )
    accelerator.end_training()


def held_out_metrics(clip: MiniClip, held_out: SimpleNamespace, args: argparse.Namespace) -> dict:
    """Top-1 retrieval both ways among groups of --num_candidates held-out pairs, and the real images' CLIP score
    and R-precision among --num_candidates distinct captions (fewer when the split has fewer; None below 2)."""
    clip.model.eval()
    images, captions = held_out.images, held_out.captions
    feats = SimpleNamespace(
        images=image_features(clip, images, args.eval_batch_size),
        texts=text_features(clip, captions, args.eval_batch_size),
    )
    if len(captions) < 2:
        scores = {"image_to_text_top1": None, "text_to_image_top1": None, "group_size": len(captions)}
    else:
        scores = retrieval_accuracy(feats.images, feats.texts, captions, args.num_candidates, args.seed)
    scores["retrieval_chance"] = 1 / max(scores["group_size"], 1)
    candidates = min(args.num_candidates, len(set(captions)))
    if candidates >= 2:
        scores.update(
            text_image_alignment(
                clip, images, captions, num_candidates=candidates, seed=args.seed, batch_size=args.eval_batch_size
            )
        )
    else:
        scores.update(clip_score=None, r_precision=None, num_candidates=candidates)
    return scores


if __name__ == "__main__":
    try:
        main(arguments)  # parsed above, before the heavy imports
    except DataError as error:
        fail(str(error).strip().splitlines()[-1].split("DataError: ", 1)[-1])
