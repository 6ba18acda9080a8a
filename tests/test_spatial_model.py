"""SpatialVAEModel: shapes, the posterior, determinism, diffusers' conventions (variants, shards, offload hooks,
slicing, gradient checkpointing) for both models, and drop-in use inside diffusers' own DiTPipeline."""

import numpy as np
import PIL.Image
import pytest
import torch
from accelerate import cpu_offload
from diffusers import AutoencoderKL, DDIMScheduler, DiTPipeline, DiTTransformer2DModel
from diffusers.image_processor import VaeImageProcessor
from safetensors.torch import load_file
from tiny import tiny_spatial_vae, tiny_vae

from vae_hub import SpatialVAEModel, VAEModel
from vae_hub.latent import compute_scaling_factor, encode_images, latent_channel_images
from vae_hub.losses import negative_elbo
from vae_hub.models import load_model


def tiny(channels: int = 1, size: int = 28, **kw) -> SpatialVAEModel:
    return tiny_spatial_vae(
        **{
            "in_channels": channels,
            "sample_size": size,
            "block_out_channels": (8, 16, 16),
            "scaling_factor": 1.0,
            "shift_factor": None,
            **kw,
        }
    )


def tiny_vector() -> VAEModel:
    return tiny_vae(sample_size=28, likelihood="laplace").eval()


def images(n: int = 3, channels: int = 1, size: int = 28) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


MODELS = {"spatial": tiny, "vector": tiny_vector}


# ------------------------------------------------------------------------------------------ shapes and maths
def test_default_28px_images_give_8x8_latents_a_unet_can_halve_twice():
    model = SpatialVAEModel()
    assert model.latent_shape == (4, 8, 8) and model.factor == 4 and model.padded_size == 32
    assert 2 ** (len(model.config.block_out_channels) - 1) == model.factor  # what diffusers pipelines compute


@pytest.mark.parametrize(
    "channels, size, latent", [(1, 28, (4, 8, 8)), (3, 32, (4, 8, 8)), (3, 33, (4, 12, 12)), (1, 12, (4, 4, 4))]
)
def test_encode_decode_shapes_any_size(channels, size, latent):
    model = tiny(channels, size)
    x = images(2, channels, size)
    posterior = model.encode(x).latent_dist
    assert posterior.mean.shape == (2, *latent) and model.latent_shape == latent
    out = model.decode(posterior.mode())
    assert out.sample.shape == x.shape and out.sample.abs().max() <= 1
    (tup,) = model.encode(x, return_dict=False)
    torch.testing.assert_close(tup.mean, posterior.mean, rtol=0, atol=0)
    (dec,) = model.decode(posterior.mode(), return_dict=False)
    torch.testing.assert_close(dec, out.sample, rtol=0, atol=0)
    assert model(x, return_dict=False)[0].shape == x.shape


def test_kl_matches_torch_distributions_summed_over_the_map():
    posterior = tiny().encode(images()).latent_dist
    q = torch.distributions.Normal(posterior.mean, posterior.std)
    p = torch.distributions.Normal(torch.zeros_like(posterior.mean), torch.ones_like(posterior.std))
    expected = torch.distributions.kl_divergence(q, p).flatten(1).sum(1)
    torch.testing.assert_close(posterior.kl(), expected, rtol=1e-5, atol=1e-4)
    out = tiny()(images(), sample_posterior=True, generator=torch.Generator().manual_seed(0))
    terms = negative_elbo(out.decoder_params, images(), out.latent_dist, "laplace", beta=1e-6)
    torch.testing.assert_close(terms.kl, expected.mean(), rtol=1e-5, atol=1e-4)
    assert torch.isclose(terms.loss, terms.reconstruction + 1e-6 * terms.kl)


def test_reparameterization_is_seeded_and_differentiable():
    model = tiny()
    x = images()
    a = model(x, sample_posterior=True, generator=torch.Generator().manual_seed(5))
    b = model(x, sample_posterior=True, generator=torch.Generator().manual_seed(5))
    c = model(x, sample_posterior=True, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(a.latents, b.latents, rtol=0, atol=0)
    assert not torch.equal(a.latents, c.latents)
    posterior = a.latent_dist
    eps = torch.randn(posterior.mean.shape, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a.latents, posterior.mean + posterior.std * eps, rtol=0, atol=0)
    a.sample.sum().backward()
    assert model.encoder.conv_in.weight.grad is not None and model.encoder.conv_in.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("block_out_channels", (8, 10), "divisible by norm_num_groups"),
        ("block_out_channels", (0, 8), "positive integers"),
        ("latent_channels", 0, "`latent_channels` must be a positive integer"),
        ("latent_multiple", -1, "`latent_multiple` must be a positive integer"),
        ("shift_factor", float("nan"), "`shift_factor` must be None or a finite number"),
        ("scaling_factor", 0.0, "`scaling_factor` must be a positive number"),
        ("out_channels", 3, "must equal in_channels"),
        ("likelihood", "poisson", "`likelihood` must be one of"),
        ("up_block_out_channels", (8, 16, 16), "`up_block_out_channels` must have one entry per encoder stage"),
        ("up_block_out_channels", (8, 6), "`up_block_out_channels` must all be divisible by norm_num_groups"),
        ("layers_per_up_block", 0, "`layers_per_up_block` must be a positive integer"),
        ("layers_per_up_block", 17, "`layers_per_up_block` must be at most 16"),
        ("layers_per_block", 10**6, "`layers_per_block` must be at most 16"),
        ("block_out_channels", (8,) * 9, "`block_out_channels` must be a sequence of 1 to 8 positive integers"),
    ],
)
def test_bad_config_names_the_field(field, value, message):
    kw = {"block_out_channels": (8, 16), "norm_num_groups": 4, field: value}
    with pytest.raises(ValueError, match=f"SpatialVAEModel config: .*{message}"):
        SpatialVAEModel(**kw)


def test_wrong_images_or_latents_are_refused_clearly():
    model = tiny()
    with pytest.raises(ValueError, match=r"expected images \(B, 1, 28, 28\), got \(2, 3, 28, 28\)"):
        model.encode(images(2, 3))
    with pytest.raises(ValueError, match=r"expected images \(B, 1, 28, 28\), got \(2, 1, 32, 32\)"):
        model.encode(images(2, 1, 32))
    with pytest.raises(ValueError, match=r"expected latents \(B, 4, 8, 8\), got \(2, 4, 7, 7\)"):
        model.decode(torch.zeros(2, 4, 7, 7))


def test_a_wider_decoder_keeps_the_shapes_and_round_trips(tmp_path):
    """up_block_out_channels / layers_per_up_block (AsymmetricAutoencoderKL's fields): the decoder gets its own width
    and depth; the encoder, the latents' shape and the API stay; save/load is bit-exact."""
    narrow, wide = tiny(), tiny(up_block_out_channels=(16, 16, 32), layers_per_up_block=2)
    assert {k: v.shape for k, v in narrow.encoder.state_dict().items()} == {
        k: v.shape for k, v in wide.encoder.state_dict().items()
    }
    assert wide.decoder.conv_out.in_channels == 16 and wide.decoder.conv_in.out_channels == 32
    assert sum(p.numel() for p in wide.parameters()) > sum(p.numel() for p in narrow.parameters())
    x = images(2)
    assert wide.encode(x).latent_dist.mean.shape == (2, 4, 8, 8) and wide(x).sample.shape == x.shape
    wide.save_pretrained(tmp_path / "wide")
    loaded = SpatialVAEModel.from_pretrained(tmp_path / "wide")
    assert (loaded.config.up_block_out_channels, loaded.config.layers_per_up_block) == ([16, 16, 32], 2)
    for k, v in wide.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k


def test_scaling_factor_gives_unit_variance_latents():
    model = tiny()
    data = ((images(64) + 1) * 127.5).round().to(torch.uint8)
    scale = compute_scaling_factor(model, data, batch_size=16, generator=torch.Generator().manual_seed(0))
    z = encode_images(model, data, sample=True, generator=torch.Generator().manual_seed(0))
    assert z.shape == (64, 4, 8, 8)
    assert (z * scale).std().item() == pytest.approx(1.0, rel=1e-4)
    maps = latent_channel_images(z[:2], scale)
    assert maps.shape == (8, 1, 8, 8) and maps.abs().max() <= 1


# ------------------------------------------------------------------------------------------ diffusers conventions
@pytest.mark.parametrize("kind", MODELS)
def test_save_load_bit_exact_and_the_other_class_refused(kind, tmp_path):
    model = MODELS[kind]()
    model.save_pretrained(tmp_path / "m")
    loaded = type(model).from_pretrained(tmp_path / "m")
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert type(load_model(tmp_path / "m")) is type(model)
    other = VAEModel if kind == "spatial" else SpatialVAEModel
    with pytest.raises(ValueError, match=f"holds a {type(model).__name__}, not a {other.__name__}"):
        other.from_pretrained(tmp_path / "m")


@pytest.mark.parametrize("kind", MODELS)
def test_fp16_variant_loads_with_the_strict_loader(kind, tmp_path):
    model = MODELS[kind]()
    model.to(torch.float16).save_pretrained(tmp_path / "m", variant="fp16")
    assert (tmp_path / "m" / "diffusion_pytorch_model.fp16.safetensors").is_file()
    loaded = type(model).from_pretrained(tmp_path / "m", variant="fp16", torch_dtype=torch.float16)
    saved = load_file(tmp_path / "m" / "diffusion_pytorch_model.fp16.safetensors")
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, saved[k]), k
    with pytest.raises(OSError, match=r"no file named diffusion_pytorch_model\.safetensors"):
        type(model).from_pretrained(tmp_path / "m")  # no default-precision weights there


@pytest.mark.parametrize("kind", MODELS)
def test_sharded_checkpoint_loads_bit_exact(kind, tmp_path):
    model = MODELS[kind]()
    model.save_pretrained(tmp_path / "m", max_shard_size="20KB")
    assert (tmp_path / "m" / "diffusion_pytorch_model.safetensors.index.json").is_file()
    assert len(list((tmp_path / "m").glob("diffusion_pytorch_model-*.safetensors"))) > 1
    loaded = type(model).from_pretrained(tmp_path / "m")
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k


@pytest.mark.parametrize("kind", MODELS)
def test_encode_and_decode_call_an_offload_hook(kind):
    """enable_model_cpu_offload-style hooks move weights when a pipeline calls vae.encode/decode directly."""
    model = MODELS[kind]()
    calls = []

    class Hook:
        def pre_forward(self, module, *args, **kwargs):
            calls.append(module)
            return args, kwargs

    model._hf_hook = Hook()
    z = model.encode(images(1)).latent_dist.mode()
    model.decode(z)
    assert calls == [model, model]


@pytest.mark.parametrize("kind", MODELS)
def test_sequential_cpu_offload_decodes_like_the_plain_model(kind):
    model = MODELS[kind]()
    x = images(2)
    with torch.no_grad():
        z = model.encode(x).latent_dist.mode()
        expected = model.decode(z).sample
        cpu_offload(model, execution_device=torch.device("cpu"))
        assert model.encoder.conv_in.weight.device.type == "meta"  # weights live elsewhere between calls
        torch.testing.assert_close(model.decode(z).sample, expected, rtol=0, atol=1e-6)
        if kind == "vector":
            generator = torch.Generator().manual_seed(0)
            assert model.generate(2, generator=generator).shape == (2, 1, 28, 28)


def test_slicing_gives_the_same_results():
    model = tiny()
    x = images(4)
    with torch.no_grad():
        posterior = model.encode(x).latent_dist
        decoded = model.decode(posterior.mode()).sample
        model.enable_slicing()
        torch.testing.assert_close(model.encode(x).latent_dist.mean, posterior.mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model.decode(posterior.mode()).sample, decoded, rtol=1e-4, atol=1e-5)
        model.disable_slicing()
    assert model.use_slicing is False


@pytest.mark.parametrize("kind", MODELS)
def test_gradient_checkpointing_gives_the_same_gradients(kind):
    def grads(checkpointing: bool) -> dict:
        model = MODELS[kind]().train()
        if checkpointing:
            model.enable_gradient_checkpointing()
            assert model.is_gradient_checkpointing
        model(images(), sample_posterior=True, generator=torch.Generator().manual_seed(0)).sample.sum().backward()
        return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    plain, checkpointed = grads(False), grads(True)
    assert plain.keys() == checkpointed.keys()
    for k in plain:
        torch.testing.assert_close(checkpointed[k], plain[k], rtol=1e-5, atol=1e-6)


def test_bf16_and_fp16_decode_finite():
    model = tiny()
    z = model.encode(images(2)).latent_dist.mode()
    for dtype in (torch.bfloat16, torch.float16):
        out = tiny().to(dtype).decode(z.to(dtype)).sample
        assert out.dtype == dtype and torch.isfinite(out).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: half-precision kernels differ on a CPU")
def test_half_precision_decode_on_gpu_without_nan():
    model = tiny().cuda()
    z = model.encode(images(4).cuda()).latent_dist.mode() * 10  # large latents, where fp16 overflows first
    for dtype in (torch.bfloat16, torch.float16):
        assert torch.isfinite(model.to(dtype).decode(z.to(dtype)).sample).all()


# ------------------------------------------------------------------------------------------ drop-in for diffusers
@pytest.mark.parametrize("channels", [1, 3])
def test_drop_in_vae_for_diffusers_dit_pipeline(channels):
    vae = tiny(channels, 28)
    torch.manual_seed(0)
    transformer = DiTTransformer2DModel(
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=8,
        num_layers=1,
        sample_size=8,
        patch_size=2,
        norm_num_groups=4,
        num_embeds_ada_norm=1000,
    )
    pipe = DiTPipeline(transformer=transformer, vae=vae, scheduler=DDIMScheduler())
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        class_labels=[1, 7], num_inference_steps=2, guidance_scale=2.0, generator=torch.Generator().manual_seed(0)
    )
    assert len(out.images) == 2
    assert out.images[0].size == (28, 28) and out.images[0].mode == ("L" if channels == 1 else "RGB")
    again = pipe(
        class_labels=[1, 7],
        num_inference_steps=2,
        guidance_scale=2.0,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images
    assert again.shape == (2, 28, 28, channels)
    np.testing.assert_array_equal(np.asarray(out.images[1]).reshape(28, 28, channels), (again[1] * 255).round())


def test_vae_image_processor_round_trip():
    vae = tiny(3, 28)
    processor = VaeImageProcessor(vae_scale_factor=vae.factor)
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28, 3), dtype=np.uint8))
    x = processor.preprocess(image, height=28, width=28)
    assert x.shape == (1, 3, 28, 28) and x.min() >= -1 and x.max() <= 1
    (back,) = processor.postprocess(x, output_type="pil")
    assert np.array_equal(np.asarray(back), np.asarray(image))
    decoded = vae.decode(vae.encode(x).latent_dist.mode()).sample
    (rendered,) = processor.postprocess(decoded.detach(), output_type="pil")
    assert rendered.size == (28, 28) and rendered.mode == "RGB"


def test_autoencoder_kl_folder_refused_by_name(tmp_path):
    AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=2).save_pretrained(tmp_path / "kl")
    with pytest.raises(ValueError, match="holds a AutoencoderKL, not a SpatialVAEModel"):
        SpatialVAEModel.from_pretrained(tmp_path / "kl")
