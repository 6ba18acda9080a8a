#!/usr/bin/env python
"""Images/s of the training scripts' loops against a plain PyTorch loop over the same model and batches.

    python benchmarks/bench_train.py                 # CPU, and CUDA when available; writes benchmarks/RESULTS.md
    python benchmarks/bench_train.py --repeats 5 --steps 40 --threads 2 --cases autoencoderkl
    python benchmarks/bench_train.py --cases autoencoderkl --mixed_precision no bf16   # bf16 autocast against fp32

Three cases (``CASES``), each a shipped model's shape on images generated in the Hub parquet layout:

* ``vector``: training/train_vae.py's flagship ``VAEModel`` (batch 128 of 28×28 grayscale);
* ``autoencoderkl``: train_vae.py's diffusers ``AutoencoderKL`` of the shipped emoji autoencoder (f = 8, Gaussian
  likelihood, batch 32 of 64×64 RGB). Both sides train with AdamW, ``vae_hub.losses.negative_elbo`` and clipping at
  the script's default norm;
* ``texttoimage``: training/train_text_to_image.py's ``CLIPTextModel`` and ``UNet2DConditionModel`` of the shipped
  emoji-sd, trained jointly on the latents of its frozen autoencoder (``space/models/emoji-sd/vae``; batch 64 of
  captioned 64×64 RGB images, encoded once): posterior sample, noise, timesteps, caption dropout, ε-MSE, AdamW,
  clipping at 1.

Each side starts from an in-memory tensor. Each measurement is a fresh subprocess with the same thread count; the
two sides alternate (script, plain, script, plain, ...) so that load on a shared machine hits both alike, and the
table reports medians. The script's number is the ``train_images_per_second`` it records in ``training_info.json``:
steady state after 5 warm-up steps, the loop only (checkpointing, validation and the mixture prior are switched off
by the flags below; the final evaluation is not timed). The plain loop times the same steps after the same warm-up.

``--mixed_precision no bf16`` measures both sides in each precision (the script's ``--mixed_precision``, the plain
loop's forward pass and loss under ``torch.autocast``), interleaved, and adds how much faster each side runs in bf16
than in fp32 in the same run: on a CPU with AMX or AVX-512 BF16, oneDNN's bf16 convolutions. It writes its own
section of RESULTS.md, so the fp32 table stays.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
RESULTS = REPO / "benchmarks" / "RESULTS.md"
SECTION = "bench_train"  # RESULTS.md's markers; the mixed-precision comparison has its own section
WARMUP = 5  # the script's warm-up before it starts timing
MAX_GRAD_NORM = 100.0  # train_vae.py's default
EMOJI_VAE = REPO / "space" / "models" / "emoji-sd" / "vae"  # the autoencoder emoji-sd was trained on
EMOJI_VAE_STAGES = (24, 48, 96, 192)  # the shipped space/models/emoji-vae
CAPTION_COLUMN = "text"
VAE_RUN_FLAGS = ["--max_grad_norm", str(MAX_GRAD_NORM), "--eval_iw_samples", "1", "--eval_max_samples", "16"]
CASES = {  # the script, its model flags and run flags, the images, the batch
    "vector": {
        "script": "train_vae.py",
        "flags": [
            "--block_out_channels",
            "16",
            "32",
            "--latent_dim",
            "32",
            "--norm_num_groups",
            "8",
            "--prior_components",
            "0",
        ],
        "run_flags": VAE_RUN_FLAGS,
        "size": 28,
        "channels": 1,
        "batch_size": 128,
    },
    "autoencoderkl": {
        "script": "train_vae.py",
        "flags": [
            "--model_type",
            "autoencoderkl",
            "--block_out_channels",
            *map(str, EMOJI_VAE_STAGES),
            "--norm_num_groups",
            "8",
            "--latent_channels",
            "4",
            "--likelihood",
            "gaussian",
        ],
        "run_flags": VAE_RUN_FLAGS,
        "size": 64,
        "channels": 3,
        "batch_size": 32,
    },
    "texttoimage": {
        "script": "train_text_to_image.py",
        "flags": [
            "--pretrained_vae_model_name_or_path",
            str(EMOJI_VAE),
            "--caption_column",
            CAPTION_COLUMN,
            "--block_out_channels",
            "64",
            "128",
            "--attention_levels",
            "0",
            "1",
            "--text_layers",
            "3",
        ],
        "run_flags": ["--num_validation_images", "1", "--num_inference_steps", "1"],
        "size": 64,
        "channels": 3,
        "batch_size": 64,
    },
}


def build_model(case: str):
    """The model the script builds from ``CASES[case]["flags"]``, in its initial state (the VAE cases)."""
    from vae_hub import AutoencoderKLWithLikelihood, VAEModel

    spec = CASES[case]
    if case == "vector":
        return VAEModel(
            in_channels=1,
            sample_size=spec["size"],
            block_out_channels=(16, 32),
            latent_dim=32,
            norm_num_groups=8,
            layers_per_block=1,
        )
    return AutoencoderKLWithLikelihood.from_config(
        {
            "in_channels": 3,
            "out_channels": 3,
            "sample_size": spec["size"],
            "block_out_channels": EMOJI_VAE_STAGES,
            "norm_num_groups": 8,
            "latent_channels": 4,
            "down_block_types": ("DownEncoderBlock2D",) * 4,
            "up_block_types": ("UpDecoderBlock2D",) * 4,
        },
        likelihood="gaussian",
    )


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--steps", type=int, default=30, help="Timed optimisation steps per measurement.")
    p.add_argument("--repeats", type=int, default=3, help="Measurements per side and device.")
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--num_images", type=int, default=1024, help="Training images generated per case.")
    p.add_argument("--threads", type=int, default=1, help="torch threads of both sides on the CPU.")
    p.add_argument("--devices", nargs="+", default=None, help="Default: cpu, plus cuda when available.")
    p.add_argument(
        "--mixed_precision",
        nargs="+",
        default=["no"],
        choices=("no", "bf16", "fp16"),
        help="Precisions to measure both sides in, interleaved (fp16 needs CUDA).",
    )
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)  # internal: one plain-loop measurement
    p.add_argument("--dataset", type=str, default=None, help=argparse.SUPPRESS)
    p.add_argument("--device", type=str, default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--case", type=str, default="vector", help=argparse.SUPPRESS)
    p.add_argument("--precision", type=str, default="no", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------ the plain loops
def autocast(args: argparse.Namespace):
    """The plain loop's forward pass and loss in ``args.precision``, as accelerate's ``--mixed_precision`` runs them."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
    return torch.autocast(torch.device(args.device).type, dtype=dtype, enabled=dtype is not None)


def timed(steps, step, batches, device) -> float:
    """Batches/s of ``step(batch)`` over ``steps`` batches after ``WARMUP`` untimed ones."""
    import torch

    def sync() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    for i, batch in enumerate(batches):
        if i == WARMUP:
            start = sync()
        if i == WARMUP + steps:
            return steps / (sync() - start)
        step(batch)


def epochs(n: int, batch_size: int, device):
    """Index batches (batch_size,) of a new random order of range(n) each epoch, forever."""
    import torch

    epoch = 0
    while True:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch)).to(device)
        for b in range(n // batch_size):
            yield order[b * batch_size : (b + 1) * batch_size]
        epoch += 1


def plain_text_to_image_loop(args: argparse.Namespace) -> float:
    """Images/s of a textbook text-to-image loop: the UNet and text encoder the script builds, on latents encoded once."""
    import datasets
    import torch
    import torch.nn.functional as F
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from vae_hub.data import decode_images
    from vae_hub.text_tokenizer import tokenize, train_caption_tokenizer

    torch.manual_seed(0)
    device = torch.device(args.device)
    batch_size = CASES[args.case]["batch_size"]
    split = datasets.load_dataset(args.dataset, split="train")
    captions = list(split[CAPTION_COLUMN])
    vae = AutoencoderKL.from_pretrained(EMOJI_VAE).to(device).eval()
    with torch.no_grad():
        x = decode_images(split, "image", 64, 3, None, "", False).images.to(device).float() / 127.5 - 1
        posterior = vae.encode(x).latent_dist
        mean, std = posterior.mean * vae.config.scaling_factor, posterior.std * vae.config.scaling_factor
    tokenizer = train_caption_tokenizer(captions, vocab_size=2048)
    ids, empty = tokenize(tokenizer, captions).to(device), tokenize(tokenizer, [""]).to(device)  # as the pipeline pads
    text_encoder = (
        CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=128,
                intermediate_size=512,
                num_hidden_layers=3,
                num_attention_heads=4,
                projection_dim=128,
                max_position_embeddings=tokenizer.model_max_length,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
        .to(device)
        .train()
    )
    unet = (
        UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            block_out_channels=(64, 128),
            layers_per_block=2,
            norm_num_groups=32,
            attention_head_dim=8,
            cross_attention_dim=128,
            down_block_types=("CrossAttnDownBlock2D",) * 2,
            up_block_types=("CrossAttnUpBlock2D",) * 2,
        )
        .to(device)
        .train()
    )
    scheduler = DDPMScheduler(num_train_timesteps=1000, clip_sample=False)
    parameters = [*unet.parameters(), *text_encoder.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=1e-4, weight_decay=1e-2)  # the script's defaults
    generator = torch.Generator(device=device).manual_seed(0)

    def step(idx) -> None:
        z = mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=generator, device=device)
        noise = torch.randn(z.shape, generator=generator, device=device)
        t = torch.randint(0, 1000, (len(z),), generator=generator, device=device)
        dropped = torch.rand(len(z), generator=generator, device=device) < 0.1
        with autocast(args):
            states = text_encoder(torch.where(dropped[:, None], empty, ids[idx]))[0]
            prediction = unet(scheduler.add_noise(z, noise, t), t, encoder_hidden_states=states).sample
        loss = F.mse_loss(prediction.float(), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()

    return batch_size * timed(args.steps, step, epochs(len(captions), batch_size, device), device)


def plain_loop(args: argparse.Namespace) -> float:
    """Images/s of a textbook training loop (this process), after the same warm-up as the script."""
    if args.case == "texttoimage":
        return plain_text_to_image_loop(args)
    import torch

    from vae_hub.data import load_split
    from vae_hub.images import uint8_to_float
    from vae_hub.losses import negative_elbo

    torch.manual_seed(0)
    device = torch.device(args.device)
    spec = CASES[args.case]
    batch_size = spec["batch_size"]
    images = load_split(
        args.dataset, "train", resolution=spec["size"], channels=spec["channels"], progress=False
    ).images.to(device)
    model = build_model(args.case).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)  # the script's defaults
    generator = torch.Generator(device=device).manual_seed(0)

    def step(idx) -> None:
        x = uint8_to_float(images[idx])
        with autocast(args):
            out = model(x, sample_posterior=True, generator=generator)
            loss = negative_elbo(out.decoder_params, x, out.latent_dist, model.config.likelihood).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        optimizer.step()

    return batch_size * timed(args.steps, step, epochs(len(images), batch_size, device), device)


# ------------------------------------------------------------------------------------------ measurements
def environment(device: str, threads: int) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TQDM_DISABLE": "1",
    }
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the script then runs on the CPU too
    return env


def measure_script(args, case: str, dataset: Path, device: str, precision: str, work: Path, repeat: int) -> float:
    out = work / f"script-{case}-{device}-{precision}-{repeat}"
    spec = CASES[case]
    command = [
        sys.executable,
        str(REPO / "training" / spec["script"]),
        "--dataset_name",
        str(dataset),
        "--output_dir",
        str(out),
        "--cache_dir",
        str(work / "cache"),
        "--train_batch_size",
        str(spec["batch_size"]),
        "--max_train_steps",
        str(WARMUP + args.steps),
        *spec["flags"],
        *spec["run_flags"],
        "--lr_warmup_steps",
        "0",
        "--report_to",
        "none",
        "--checkpointing_steps",
        "1000000",
        "--validation_epochs",
        "1000000",
        "--logging_steps",
        "10",
        "--mixed_precision",
        precision,
    ]
    subprocess.run(command, env=environment(device, args.threads), check=True, capture_output=True, timeout=1800)
    return json.loads((out / "training_info.json").read_text())["train_images_per_second"]


def measure_plain(args, case: str, dataset: Path, device: str, precision: str) -> float:
    command = [
        sys.executable,
        __file__,
        "--plain",
        "--dataset",
        str(dataset),
        "--device",
        device,
        "--steps",
        str(args.steps),
        "--case",
        case,
        "--precision",
        precision,
    ]
    done = subprocess.run(
        command, env=environment(device, args.threads), check=True, capture_output=True, text=True, timeout=1800
    )
    return float(done.stdout.strip().splitlines()[-1])


def machine(devices: list[str], threads: int) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    text = f"{cpu}, {os.cpu_count()} cores ({threads} torch thread{'s' * (threads > 1)} per side), torch {torch.__version__}"
    if "cuda" in devices:
        text += f", {torch.cuda.get_device_name(0)}"
    return text


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def write_results(path: Path, section: str, name: str = SECTION) -> None:
    """Replace the section ``name`` of ``path`` (between its markers), keeping the rest of the file."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{begin}\n{section.strip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main(args: argparse.Namespace) -> None:
    import torch

    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    precisions = list(dict.fromkeys(args.mixed_precision))
    load_before = load()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        from datasets_util import write_hub_dataset

        work = Path(tmp)
        for case in args.cases:
            spec = CASES[case]
            dataset = write_hub_dataset(
                work / f"data-{case}",
                n_train=args.num_images,
                n_test=16,
                size=spec["size"],
                channels=spec["channels"],
                caption_column=CAPTION_COLUMN if case == "texttoimage" else None,
            )
            for device in devices:
                script = {precision: [] for precision in precisions}
                plain = {precision: [] for precision in precisions}
                for repeat in range(args.repeats):  # interleaved: script, plain, script, plain, ... each precision
                    for precision in precisions:
                        script[precision].append(measure_script(args, case, dataset, device, precision, work, repeat))
                        plain[precision].append(measure_plain(args, case, dataset, device, precision))
                        print(
                            f"{case} {device} {precision} repeat {repeat}: script {script[precision][-1]:.0f} img/s, "
                            f"plain {plain[precision][-1]:.0f} img/s",
                            flush=True,
                        )
                for precision in precisions:
                    rows.append((case, device, precision, script[precision], plain[precision], script[precisions[0]]))

    mixed = precisions != ["no"]
    lines = [
        "## Training loops: `training/train_vae.py` and `train_text_to_image.py` vs a plain PyTorch loop "
        f"(`benchmarks/bench_train.py`){', in ' + ' and '.join(map(precision_name, precisions)) if mixed else ''}",
        "",
        f"Machine: {machine(devices, args.threads)}. Cases: "
        + "; ".join(
            f"`{case}`: `{' '.join(CASES[case]['flags']).replace(f'{REPO}/', '')}`, batch {CASES[case]['batch_size']} of "
            f"{CASES[case]['size']}×{CASES[case]['size']}×{CASES[case]['channels']}"
            for case in args.cases
        )
        + f". In-memory data; the loss and optimiser as the module's doc says. {args.repeats} interleaved "
        f"repeats of {args.steps} timed steps after {WARMUP} warm-up steps; medians. Load average (1/5/15 min) before: "
        f"{load_before}, after: {load()}.",
        "",
        "| case | device | precision | script images/s | plain loop images/s | ratio (script / plain) | paired ratios |"
        + (f" script's speed-up over {precision_name(precisions[0])} |" if mixed else ""),
        "|---|---|---|---|---|---|---|" + ("---|" if mixed else ""),
    ]
    for case, device, precision, script, plain, first in rows:
        ratios = [a / b for a, b in zip(script, plain)]
        speed_up = [a / b for a, b in zip(script, first)]
        lines.append(
            f"| {case} | {device} | {precision_name(precision)} | {statistics.median(script):.0f} "
            f"({', '.join(f'{v:.0f}' for v in script)}) | {statistics.median(plain):.0f} "
            f"({', '.join(f'{v:.0f}' for v in plain)}) | **{statistics.median(script) / statistics.median(plain):.2f}** | "
            f"{min(ratios):.2f}–{max(ratios):.2f} |"
            + (f" **{statistics.median(speed_up):.2f}×** ({min(speed_up):.2f}–{max(speed_up):.2f}) |" if mixed else "")
        )
    lines.append("")
    lines.append(
        f"Command: `python benchmarks/bench_train.py --repeats {args.repeats} --steps {args.steps} "
        f"--threads {args.threads} --cases {' '.join(args.cases)}"
        f"{' --mixed_precision ' + ' '.join(precisions) if mixed else ''}`. Target: ratio ≥ 0.95."
    )
    section = "\n".join(lines)
    write_results(args.results, section, SECTION + ("_mixed_precision" if mixed else ""))
    print(section)


def precision_name(precision: str) -> str:
    return "fp32" if precision == "no" else precision


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.plain:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
        print(plain_loop(arguments))
    else:
        main(arguments)
