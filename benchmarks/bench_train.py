#!/usr/bin/env python
"""Images/s of training/train_vae.py's loop against a plain PyTorch loop over the same model and batches.

    python benchmarks/bench_train.py                 # CPU, and CUDA when available; writes benchmarks/RESULTS.md
    python benchmarks/bench_train.py --repeats 5 --steps 40 --threads 2

Both sides train the flagship's shape (``--block_out_channels 16 32 --latent_dim 32``, batch 128, 28×28 grayscale
images generated in the Hub parquet layout) with AdamW, ``vae_hub.losses.negative_elbo`` and gradient clipping at the
script's default norm, from an in-memory uint8 tensor. Each measurement is a fresh subprocess with the same thread
count; the two sides alternate (script, plain, script, plain, ...) so that load on a shared machine hits both alike,
and the table reports medians. The script's number is the ``train_images_per_second`` it records in
``training_info.json``: steady state after 5 warm-up steps, the loop only (checkpointing, validation and the mixture
prior are switched off by the flags below; the final evaluation is not timed). The plain loop times the same steps
after the same warm-up.
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
BEGIN, END = "<!-- bench_train -->", "<!-- /bench_train -->"
WARMUP = 5  # the script's warm-up before it starts timing
MODEL = {"block_out_channels": (16, 32), "latent_dim": 32, "norm_num_groups": 8, "layers_per_block": 1}
MAX_GRAD_NORM = 100.0  # the script's default


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--steps", type=int, default=30, help="Timed optimisation steps per measurement.")
    p.add_argument("--repeats", type=int, default=3, help="Measurements per side and device.")
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--num_images", type=int, default=2048, help="Training images generated (28×28 grayscale).")
    p.add_argument("--threads", type=int, default=1, help="torch threads of both sides on the CPU.")
    p.add_argument("--devices", nargs="+", default=None, help="Default: cpu, plus cuda when available.")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)  # internal: one plain-loop measurement
    p.add_argument("--dataset", type=str, default=None, help=argparse.SUPPRESS)
    p.add_argument("--device", type=str, default="cpu", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------ the plain loop
def plain_loop(args: argparse.Namespace) -> float:
    """Images/s of a textbook training loop (this process), after the same warm-up as the script."""
    import torch

    from vae_hub import VAEModel
    from vae_hub.data import load_split
    from vae_hub.images import uint8_to_float
    from vae_hub.losses import negative_elbo

    torch.manual_seed(0)
    device = torch.device(args.device)
    images = load_split(args.dataset, "train", resolution=28, channels=1, progress=False).images.to(device)
    model = VAEModel(in_channels=1, sample_size=28, **MODEL).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)  # the script's defaults
    generator = torch.Generator(device=device).manual_seed(0)
    batches_per_epoch = len(images) // args.batch_size

    def batches():
        epoch = 0
        while True:
            order = torch.randperm(len(images), generator=torch.Generator().manual_seed(epoch)).to(device)
            for b in range(batches_per_epoch):
                yield uint8_to_float(images[order[b * args.batch_size : (b + 1) * args.batch_size]])
            epoch += 1

    def sync() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    for step, x in enumerate(batches()):
        if step == WARMUP:
            start = sync()
        if step == WARMUP + args.steps:
            return args.steps * args.batch_size / (sync() - start)
        out = model(x, sample_posterior=True, generator=generator)
        loss = negative_elbo(out.decoder_params, x, out.latent_dist, model.config.likelihood).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        optimizer.step()


# ------------------------------------------------------------------------------------------ measurements
def environment(device: str, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TQDM_DISABLE": "1"}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the script then runs on the CPU too
    return env


def measure_script(args, dataset: Path, device: str, work: Path, repeat: int) -> float:
    out = work / f"script-{device}-{repeat}"
    command = [
        sys.executable, str(REPO / "training" / "train_vae.py"), "--dataset_name", str(dataset), "--output_dir",
        str(out), "--cache_dir", str(work / "cache"), "--train_batch_size", str(args.batch_size),
        "--max_train_steps", str(WARMUP + args.steps), "--block_out_channels", *map(str, MODEL["block_out_channels"]),
        "--latent_dim", str(MODEL["latent_dim"]), "--norm_num_groups", str(MODEL["norm_num_groups"]),
        "--max_grad_norm", str(MAX_GRAD_NORM), "--lr_warmup_steps", "0", "--report_to", "none",
        "--prior_components", "0", "--checkpointing_steps", "1000000", "--validation_epochs", "1000000",
        "--logging_steps", "10", "--eval_iw_samples", "1", "--eval_max_samples", "16",
    ]
    subprocess.run(command, env=environment(device, args.threads), check=True, capture_output=True, timeout=1800)
    return json.loads((out / "training_info.json").read_text())["train_images_per_second"]


def measure_plain(args, dataset: Path, device: str) -> float:
    command = [sys.executable, __file__, "--plain", "--dataset", str(dataset), "--device", device, "--steps",
               str(args.steps), "--batch_size", str(args.batch_size)]
    done = subprocess.run(command, env=environment(device, args.threads), check=True, capture_output=True, text=True,
                          timeout=1800)
    return float(done.stdout.strip().splitlines()[-1])


def machine(devices: list[str], threads: int) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    text = f"{cpu}, {os.cpu_count()} cores ({threads} torch thread{'s' * (threads > 1)} per side), torch {torch.__version__}"
    if "cuda" in devices:
        text += f", {torch.cuda.get_device_name(0)}"
    return text


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def write_results(path: Path, section: str) -> None:
    """Replace this benchmark's section of ``path`` (between its markers), keeping the rest of the file."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{section.strip()}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main(args: argparse.Namespace) -> None:
    import torch

    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    load_before = load()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        from datasets_util import write_hub_dataset

        work = Path(tmp)
        dataset = write_hub_dataset(work / "data", n_train=args.num_images, n_test=64, size=28, channels=1)
        for device in devices:
            script, plain = [], []
            for repeat in range(args.repeats):  # interleaved: script, plain, script, plain, ...
                script.append(measure_script(args, dataset, device, work, repeat))
                plain.append(measure_plain(args, dataset, device))
                print(f"{device} repeat {repeat}: script {script[-1]:.0f} img/s, plain {plain[-1]:.0f} img/s", flush=True)
            ratios = [s / p for s, p in zip(script, plain)]
            rows.append((device, script, plain, ratios))

    lines = [
        "## Training loop: `training/train_vae.py` vs a plain PyTorch loop (`benchmarks/bench_train.py`)",
        "",
        f"Machine: {machine(devices, args.threads)}. Model: `--block_out_channels 16 32 --latent_dim 32`, batch "
        f"{args.batch_size}, 28×28 grayscale, in-memory uint8 data, AdamW + `negative_elbo` + clipping at "
        f"{MAX_GRAD_NORM:g}. {args.repeats} interleaved repeats of {args.steps} timed steps after {WARMUP} warm-up "
        f"steps; medians. Load average (1/5/15 min) before: {load_before}, after: {load()}.",
        "",
        "| device | script images/s | plain loop images/s | ratio (script / plain) | paired ratios |",
        "|---|---|---|---|---|",
    ]
    for device, script, plain, ratios in rows:
        ratio = statistics.median(script) / statistics.median(plain)
        lines.append(f"| {device} | {statistics.median(script):.0f} ({', '.join(f'{v:.0f}' for v in script)}) | "
                     f"{statistics.median(plain):.0f} ({', '.join(f'{v:.0f}' for v in plain)}) | **{ratio:.2f}** | "
                     f"{min(ratios):.2f}–{max(ratios):.2f} |")
    lines.append("")
    lines.append(f"Command: `python benchmarks/bench_train.py --repeats {args.repeats} --steps {args.steps} "
                 f"--threads {args.threads}`. Target: ratio ≥ 0.95.")
    section = "\n".join(lines)
    write_results(args.results, section)
    print(section)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.plain:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
        print(plain_loop(arguments))
    else:
        main(arguments)
