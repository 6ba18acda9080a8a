"""One suite of the autoencoder API, run over vae-hub's VAEModel and SpatialVAEModel and diffusers' own AutoencoderKL:
each forward, save and load convention of diffusers' ``ModelMixin`` models, with a test of its own (issue 27).

A convention that vae-hub's models keep differently from diffusers on purpose (safetensors only unless told
otherwise) is tested for them alone.
"""

import inspect
import json

import pytest
import torch
from diffusers import DDIMScheduler, ModelMixin
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from tiny import random_images, tiny_autoencoder_kl, tiny_spatial_vae, tiny_unet, tiny_vae

from vae_hub import LatentDiffusionPipeline, SpatialVAEModel


# name → (factory, image shape (C, H, W), the posterior mean's shape per image)
MODELS = {
    "VAEModel": (lambda: tiny_vae(sample_size=12).eval(), (1, 12, 12), (4, 1, 1)),
    "SpatialVAEModel": (tiny_spatial_vae, (1, 12, 12), (4, 8, 8)),
    "AutoencoderKL": (tiny_autoencoder_kl, (1, 8, 8), (4, 4, 4)),
}
OURS = ["VAEModel", "SpatialVAEModel"]
WEIGHTS = "diffusion_pytorch_model.safetensors"


def build(name: str):
    factory, image_shape, _ = MODELS[name]
    return factory(), random_images(3, image_shape[0], image_shape[1])


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def reconstruct(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).sample


@pytest.fixture(params=list(MODELS))
def name(request) -> str:
    return request.param


@pytest.fixture(params=OURS)
def ours(request) -> str:
    return request.param


# ---------------------------------------------------------------------------------------------------- forward
def test_encode_returns_the_posterior_as_autoencoder_kl_output(name):
    model, x = build(name)
    with torch.no_grad():
        out = model.encode(x)
        (posterior,) = model.encode(x, return_dict=False)
    assert isinstance(out, AutoencoderKLOutput) and isinstance(out.latent_dist, DiagonalGaussianDistribution)
    assert isinstance(posterior, DiagonalGaussianDistribution)
    assert out.latent_dist.mean.shape == (3, *MODELS[name][2]) and torch.equal(out.latent_dist.mean, posterior.mean)


def test_decode_returns_images_as_decoder_output(name):
    model, x = build(name)
    with torch.no_grad():
        z = model.encode(x).latent_dist.mode()
        out, (image,) = model.decode(z), model.decode(z, return_dict=False)
    assert isinstance(out, DecoderOutput) and out.sample.shape == x.shape and torch.equal(out.sample, image)


def test_forward_returns_tensors_only(name):
    model, x = build(name)
    with torch.no_grad():
        out = model(x)
        as_tuple = model(x, return_dict=False)
    assert isinstance(out, DecoderOutput) and out.sample.shape == x.shape
    assert all(isinstance(value, torch.Tensor) for value in out.values())
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], out.sample)


def test_forward_samples_the_posterior_reproducibly(name):
    model, x = build(name)
    with torch.no_grad():
        a, b = (model(x, sample_posterior=True, generator=torch.Generator().manual_seed(0)).sample for _ in range(2))
        mean = model(x).sample
    assert torch.equal(a, b) and not torch.equal(a, mean)


def test_forward_reconstructs_through_the_posterior_mean(name):
    model, x = build(name)
    with torch.no_grad():
        expected = model.decode(model.encode(x).latent_dist.mode()).sample
    assert torch.equal(reconstruct(model, x), expected)


def test_the_posterior_stays_available_from_the_forward_outputs_moments(ours):
    """vae-hub's loss needs q(z | x): forward carries its moments (a tensor) and rebuilds the distribution from them."""
    model, x = build(ours)
    with torch.no_grad():
        out, posterior = model(x), model.encode(x).latent_dist
    assert torch.equal(out.posterior_moments, posterior.parameters)
    assert torch.equal(out.latent_dist.mean, posterior.mean) and torch.equal(out.latent_dist.std, posterior.std)
    assert out.decoder_params.shape[2:] == x.shape[2:] and out.latents.shape[0] == len(x)


def test_forward_exports_with_torch_export(name):
    """diffusers' AOT-compile test: ``torch.export.export`` takes the forward pass, whose output holds tensors only."""
    model, x = build(name)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        assert torch.equal(exported.module()(x).sample, reconstruct(model, x))


# ---------------------------------------------------------------------------------------------------- saving
def test_save_pretrained_has_model_mixins_signature(name):
    """A pipeline passes safe_serialization, variant and max_shard_size only to a component whose save_pretrained
    names them."""
    expected = {
        k: p.default
        for k, p in inspect.signature(ModelMixin.save_pretrained).parameters.items()
        if k not in ("self", "use_flashpack", "kwargs")
    }
    found = inspect.signature(type(build(name)[0]).save_pretrained).parameters
    assert {k: found[k].default for k in expected if k in found} == expected


def test_save_and_load_round_trip_is_bit_exact(name, tmp_path):
    model, x = build(name)
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path)
    assert (tmp_path / WEIGHTS).is_file() and not loaded.training
    assert same_weights(model, loaded) and torch.equal(reconstruct(loaded, x), reconstruct(model, x))
    assert json.loads((tmp_path / "config.json").read_text())["_class_name"] == type(model).__name__


def test_a_variant_is_saved_and_loaded_by_name(name, tmp_path):
    model, x = build(name)
    model.save_pretrained(tmp_path, variant="fp16")
    assert (tmp_path / "diffusion_pytorch_model.fp16.safetensors").is_file() and not (tmp_path / WEIGHTS).exists()
    loaded = type(model).from_pretrained(tmp_path, variant="fp16")
    assert same_weights(model, loaded)
    with pytest.raises(OSError, match=r"no file named diffusion_pytorch_model\.(safetensors|bin)"):
        type(model).from_pretrained(tmp_path)  # no default weights there (diffusers falls back to asking for a pickle)


def test_a_sharded_save_loads_bit_exact(name, tmp_path):
    model, x = build(name)
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    index = json.loads((tmp_path / "diffusion_pytorch_model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1 and not (tmp_path / WEIGHTS).exists()
    loaded = type(model).from_pretrained(tmp_path)
    assert same_weights(model, loaded) and torch.equal(reconstruct(loaded, x), reconstruct(model, x))


def test_a_saved_dtype_loads_as_saved(name, tmp_path):
    model, _ = build(name)
    model.to(torch.float16).save_pretrained(tmp_path, variant="fp16")
    loaded = type(model).from_pretrained(tmp_path, variant="fp16", torch_dtype=torch.float16)
    assert loaded.dtype == torch.float16 and same_weights(model, loaded)


def test_a_pickle_only_folder_is_refused_in_diffusers_words_with_the_reason(ours, tmp_path):
    model, x = build(ours)
    model.save_pretrained(tmp_path, safe_serialization=False)
    with pytest.raises(
        OSError,
        match=r"^Error no file named diffusion_pytorch_model\.safetensors found in directory "
        r".*arbitrary code.*only has a pickle checkpoint",
    ):
        type(model).from_pretrained(tmp_path)
    assert same_weights(model, type(model).from_pretrained(tmp_path, use_safetensors=False))


# ---------------------------------------------------------------------------------------------------- in a pipeline
PIPELINE_VAES = {"SpatialVAEModel": (tiny_spatial_vae, 8), "AutoencoderKL": (tiny_autoencoder_kl, 4)}


@pytest.mark.parametrize("vae_name", list(PIPELINE_VAES))
def test_a_pipeline_saved_with_a_variant_writes_its_vae_with_it(vae_name, tmp_path):
    factory, latent_size = PIPELINE_VAES[vae_name]
    pipe = LatentDiffusionPipeline(
        factory(), tiny_unet(sample_size=latent_size), DDIMScheduler(num_train_timesteps=50)
    )
    pipe.save_pretrained(tmp_path, variant="fp16")
    for component in ("vae", "unet"):
        assert sorted(p.name for p in (tmp_path / component).glob("*.safetensors")) == [
            "diffusion_pytorch_model.fp16.safetensors"
        ], component
    loaded = LatentDiffusionPipeline.from_pretrained(tmp_path, variant="fp16")
    assert type(loaded.vae).__name__ == vae_name and same_weights(pipe.vae, loaded.vae)
    with pytest.raises(ValueError, match="variant=bf16"):  # diffusers' loader, for the vae as for the rest
        LatentDiffusionPipeline.from_pretrained(tmp_path, variant="bf16")


def test_a_pipelines_vae_loads_through_diffusers_component_loader(tmp_path, caplog):
    import logging as std_logging

    from diffusers.utils import logging

    pipe = LatentDiffusionPipeline(tiny_spatial_vae(), tiny_unet(sample_size=8), DDIMScheduler(num_train_timesteps=50))
    pipe.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "model_index.json").read_text())["vae"] == ["vae_hub", "SpatialVAEModel"]
    verbosity = logging.get_verbosity()
    logging.set_verbosity_info()
    try:
        with caplog.at_level(std_logging.INFO, logger="diffusers"):
            loaded = LatentDiffusionPipeline.from_pretrained(
                tmp_path, torch_dtype={"vae": torch.float16, "default": torch.float32}
            )
    finally:
        logging.set_verbosity(verbosity)
    assert "Loaded vae as SpatialVAEModel from `vae` subfolder" in caplog.text
    assert type(loaded.vae) is SpatialVAEModel and loaded.vae.dtype == torch.float16
    assert loaded.unet.dtype == torch.float32


def test_the_pipelines_call_has_an_examples_docstring_that_runs(tmp_path, monkeypatch):
    from pathlib import Path

    doc = LatentDiffusionPipeline.__call__.__doc__
    assert "Examples:" in doc and ">>> pipe = LatentDiffusionPipeline.from_pretrained(" in doc
    shipped = Path(__file__).resolve().parent.parent / "space" / "models" / "fashion-mnist-ldm"
    code = "\n".join(line.strip()[4:] for line in doc.splitlines() if line.strip().startswith(">>> "))
    monkeypatch.chdir(tmp_path)
    exec(code.replace('"space/models/fashion-mnist-ldm"', repr(str(shipped))), {})
    assert (tmp_path / "sneaker.png").is_file()


def test_the_pipeline_file_only_samples_and_its_loading_lives_beside_the_models():
    from vae_hub.models.pipeline_loading import PipelineLoadingMixin

    own = set(vars(LatentDiffusionPipeline))
    assert not own & {"save_pretrained", "from_pretrained", "download", "to_json_string", "_dict_from_json_file"}
    assert LatentDiffusionPipeline.__mro__[1] is PipelineLoadingMixin
