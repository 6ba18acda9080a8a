"""Outputs of the shipped models for fixed seeds, to prove that a change of code or of weight names leaves them
bit-identical (issue 27): run it with the code before the change (``save``), then after it (``check``).

    cd <old checkout> && PYTHONPATH=. python tests/shipped_outputs.py save /tmp/before.pt
    cd <new checkout> && PYTHONPATH=. python tests/shipped_outputs.py check /tmp/before.pt

The models are read from the ``space/models`` beside this file, so each run compares that checkout's code with its
own shipped weights.

Covered: the vector VAEs' prior samples (standard and mixture), reconstructions, posterior means and a sampled forward
pass; the spatial VAEs' (and the pipeline's vae's) reconstructions, posterior means and decodes of fixed latents; the
pipeline's images and latents for fixed seeds.
"""

import sys
from pathlib import Path

import torch


MODELS = Path(__file__).resolve().parent.parent / "space" / "models"


def _images(channels: int, size: int, n: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(1234)
    return torch.randint(0, 256, (n, channels, size, size), generator=g).float() / 127.5 - 1


def vector_outputs(model) -> dict[str, torch.Tensor]:
    x = _images(model.config.in_channels, model.config.sample_size)
    out = {
        "samples": model.generate(16, generator=torch.Generator().manual_seed(0)),
        "mean": model.encode(x).latent_dist.mean,
        "reconstruction": model.decode(model.encode(x).latent_dist.mean).sample,
        "forward": model(x).sample,
        "forward_sampled": model(x, sample_posterior=True, generator=torch.Generator().manual_seed(1)).sample,
    }
    if model.config.prior_components:
        out["mixture_samples"] = model.generate(16, generator=torch.Generator().manual_seed(0), prior="mixture")
    return out


def spatial_outputs(model) -> dict[str, torch.Tensor]:
    x = _images(model.config.in_channels, model.config.sample_size)
    z = torch.randn(8, *model.latent_shape, generator=torch.Generator().manual_seed(0))
    return {
        "mean": model.encode(x).latent_dist.mean,
        "reconstruction": model.decode(model.encode(x).latent_dist.mode()).sample,
        "decoded": model.decode(z).sample,
        "forward": model(x).sample,
        "forward_sampled": model(x, sample_posterior=True, generator=torch.Generator().manual_seed(1)).sample,
    }


def pipeline_outputs(pipe) -> dict[str, torch.Tensor]:
    out = {}
    for output_type in ("pt", "latent"):
        out[output_type] = pipe(
            class_labels=list(range(pipe.num_classes)),
            num_inference_steps=10,
            guidance_scale=4.0,
            generator=torch.Generator().manual_seed(0),
            output_type=output_type,
        ).images
    # every argument explicit: the comparison must not depend on a default that changes on its own
    out["unconditional"] = pipe(
        num_images_per_class=4,
        num_inference_steps=5,
        guidance_scale=4.0,
        generator=torch.Generator().manual_seed(2),
        output_type="pt",
    ).images
    return out


@torch.no_grad()
def shipped_outputs() -> dict[str, torch.Tensor]:
    from vae_hub import LatentDiffusionPipeline
    from vae_hub.models import load_model

    torch.manual_seed(0)
    found = {}
    for name in ("fashion-mnist-vae", "fashion-mnist-vae-2d"):
        found.update({f"{name}/{k}": v for k, v in vector_outputs(load_model(MODELS / name)).items()})
    found.update(
        {
            f"fashion-mnist-spatial-vae/{k}": v
            for k, v in spatial_outputs(load_model(MODELS / "fashion-mnist-spatial-vae")).items()
        }
    )
    pipe = LatentDiffusionPipeline.from_pretrained(MODELS / "fashion-mnist-ldm")
    pipe.set_progress_bar_config(disable=True)
    found.update({f"fashion-mnist-ldm/vae/{k}": v for k, v in spatial_outputs(pipe.vae).items()})
    found.update({f"fashion-mnist-ldm/{k}": v for k, v in pipeline_outputs(pipe).items()})
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("save", "check"):
        print(__doc__)
        return 2
    outputs = shipped_outputs()
    if argv[0] == "save":
        torch.save(outputs, argv[1])
        print(f"saved {len(outputs)} tensors to {argv[1]}")
        return 0
    before = torch.load(argv[1])
    differ = sorted(
        k
        for k in before.keys() | outputs.keys()
        if k not in before or k not in outputs or not torch.equal(before[k], outputs[k])
    )
    for key in sorted(outputs):
        print(f"{'equal ' if key not in differ else 'DIFFER'} {key} {tuple(outputs[key].shape)}")
    print(f"{len(outputs) - len(differ)} of {len(before.keys() | outputs.keys())} tensors torch.equal to {argv[1]}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
