"""LatentDiffusionPipeline on tiny models: output types and shapes (1 and 3 channels), every scheduler family,
classifier-free guidance, class names, the decode formula, callbacks, dtype, errors, and save/load round trips
(bit-identical samples, through ``LatentDiffusionPipeline`` and through diffusers' ``DiffusionPipeline``)."""

import json
from types import SimpleNamespace

import huggingface_hub
import numpy as np
import PIL.Image
import pytest
import tiny
import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DDPMScheduler,
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    UNet2DModel,
)
from diffusers.callbacks import PipelineCallback
from hub_doubles import populate_hf_cache

from vae_hub import LatentDiffusionPipeline, SpatialVAEModel


CLASSES = ["Zero", "one", "T-shirt/top"]
SCHEDULERS = [DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler]


def tiny_vae(channels: int = 1, shift_factor: float | None = None) -> AutoencoderKL:
    """8×8 images ↔ 4×4×4 latents."""
    return tiny.tiny_autoencoder_kl(channels, shift_factor=shift_factor)


def tiny_spatial_vae(channels: int = 1) -> SpatialVAEModel:
    """12×12 images (padded to 16) ↔ 4×8×8 latents."""
    return tiny.tiny_spatial_vae(in_channels=channels)


def tiny_unet(num_classes: int | None = len(CLASSES), sample_size: int = 4) -> UNet2DModel:
    return tiny.tiny_unet(num_classes, sample_size)


def tiny_pipe(channels: int = 1, scheduler=DPMSolverMultistepScheduler, **vae_kwargs) -> LatentDiffusionPipeline:
    pipe = LatentDiffusionPipeline(
        tiny_vae(channels, **vae_kwargs),
        tiny_unet(),
        scheduler(num_train_timesteps=100),
        id2label=dict(enumerate(CLASSES)),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class UNetCalls:
    """Records the batch and class labels of every UNet call (a forward pre-hook)."""

    def __init__(self, unet: UNet2DModel):
        self.inputs, self.labels = [], []
        unet.register_forward_pre_hook(self.record, with_kwargs=True)

    def record(self, module, args, kwargs):
        self.inputs.append(args[0].clone())
        labels = kwargs.get("class_labels")
        self.labels.append(None if labels is None else labels.tolist())


@pytest.fixture(scope="module")
def pipe() -> LatentDiffusionPipeline:
    return tiny_pipe()


# ==================================================================================== outputs
@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_output_types_and_shapes(channels, mode):
    pipe = tiny_pipe(channels)
    kwargs = {"num_images_per_class": 2, "num_inference_steps": 2}
    pil = pipe(["zero", 1], generator=seeded(), **kwargs).images
    assert len(pil) == 4 and all(
        isinstance(im, PIL.Image.Image) and im.mode == mode and im.size == (8, 8) for im in pil
    )
    array = pipe(["zero", 1], generator=seeded(), output_type="np", **kwargs).images
    assert array.shape == (4, 8, 8, channels) and array.dtype == np.float32 and 0 <= array.min() <= array.max() <= 1
    tensor = pipe(["zero", 1], generator=seeded(), output_type="pt", **kwargs).images
    assert tensor.shape == (4, channels, 8, 8) and 0 <= tensor.min() <= tensor.max() <= 1
    np.testing.assert_allclose(tensor.permute(0, 2, 3, 1).numpy(), array, atol=1e-6)  # same samples, other layout
    assert np.array_equal(np.asarray(pil[0]), (array[0, ..., 0] if channels == 1 else array[0]).__mul__(255).round())
    latents = pipe(["zero", 1], generator=seeded(), output_type="latent", **kwargs).images
    assert latents.shape == (4, 4, 4, 4)
    (images,) = pipe(0, generator=seeded(), output_type="pt", return_dict=False, num_inference_steps=2)
    assert images.shape == (1, channels, 8, 8)


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=lambda s: s.__name__)
def test_every_scheduler_samples_deterministically(scheduler):
    pipe = tiny_pipe(scheduler=scheduler)
    first = pipe("one", num_images_per_class=2, num_inference_steps=3, generator=seeded(3), output_type="pt").images
    again = pipe("one", num_images_per_class=2, num_inference_steps=3, generator=seeded(3), output_type="pt").images
    other = pipe("one", num_images_per_class=2, num_inference_steps=3, generator=seeded(4), output_type="pt").images
    assert torch.isfinite(first).all() and torch.equal(first, again) and not torch.equal(first, other)


def test_initial_noise_is_scaled_by_init_noise_sigma_and_model_input_by_the_scheduler():
    pipe = tiny_pipe(scheduler=EulerDiscreteScheduler)  # init_noise_sigma and scale_model_input are not identities
    calls = UNetCalls(pipe.unet)
    noise = torch.randn(1, 4, 4, 4, generator=seeded())
    pipe(0, latents=noise, guidance_scale=1.0, num_inference_steps=2, output_type="latent")
    sigma = pipe.scheduler.init_noise_sigma
    assert sigma > 1
    first_sigma = pipe.scheduler.sigmas[0]
    torch.testing.assert_close(calls.inputs[0], noise * sigma / (first_sigma**2 + 1) ** 0.5)


def test_latents_are_decoded_with_scaling_and_shift_factor():
    pipe = tiny_pipe(shift_factor=0.25)
    latents = pipe("one", num_inference_steps=2, generator=seeded(), output_type="latent").images
    images = pipe("one", num_inference_steps=2, generator=seeded(), output_type="pt").images
    decoded = pipe.vae.decode(latents / 0.7 + 0.25).sample
    torch.testing.assert_close(images, (decoded / 2 + 0.5).clamp(0, 1))


# ==================================================================================== labels and guidance
def test_class_labels_guidance_and_unconditional_batches():
    pipe = tiny_pipe()
    calls = UNetCalls(pipe.unet)
    pipe(["t-shirt/TOP", 0], num_images_per_class=2, guidance_scale=3.0, num_inference_steps=2, output_type="latent")
    # classifier-free guidance: one UNet call on [conditional, unconditional]; the last label (3) is "no class"
    assert calls.labels == [[2, 2, 0, 0, 3, 3, 3, 3]] * 2

    calls.labels.clear()
    pipe(["one"], num_images_per_class=2, guidance_scale=1.0, num_inference_steps=2, output_type="latent")
    assert calls.labels == [[1, 1]] * 2  # guidance off at w <= 1: the conditional model alone

    calls.labels.clear()
    pipe(None, num_images_per_class=3, guidance_scale=5.0, num_inference_steps=2, output_type="latent")
    assert calls.labels == [[3, 3, 3]] * 2  # unconditional: the "no class" label, never guided


def test_guidance_changes_samples_and_same_class_by_name_or_id():
    pipe = tiny_pipe()

    def run(labels, w):
        return pipe(labels, guidance_scale=w, num_inference_steps=2, generator=seeded(), output_type="pt").images

    assert torch.equal(run("ZERO", 3.0), run(0, 3.0)) and torch.equal(run(["zero"], 3.0), run([0], 3.0))
    assert not torch.equal(run(0, 3.0), run(0, 1.0))
    assert not torch.equal(run(0, 1.0), run(1, 1.0))


def test_class_names_round_trip_and_dit_style_lookup(pipe):
    assert pipe.class_names == CLASSES and pipe.num_classes == 3
    assert pipe.labels == {"Zero": 0, "one": 1, "T-shirt/top": 2}
    assert pipe.get_label_ids(["ONE", 2, "zero"]) == [1, 2, 0]
    unnamed = LatentDiffusionPipeline(tiny_vae(), tiny_unet(), DDIMScheduler())
    assert unnamed.class_names == ["0", "1", "2"] and unnamed.get_label_ids("1") == [1]


def test_unconditional_unet():
    pipe = LatentDiffusionPipeline(tiny_vae(), tiny_unet(num_classes=None), DDIMScheduler(num_train_timesteps=100))
    pipe.set_progress_bar_config(disable=True)
    calls = UNetCalls(pipe.unet)
    images = pipe(num_images_per_class=2, num_inference_steps=2, output_type="pt").images
    assert images.shape == (2, 1, 8, 8) and calls.labels == [None, None] and pipe.class_names == []
    with pytest.raises(ValueError, match="unconditional"):
        pipe(0)


@pytest.mark.parametrize(
    "call, message",
    [
        ({"class_labels": "two"}, r"unknown class 'two'; the classes are \['Zero', 'one', 'T-shirt/top'\]"),
        ({"class_labels": 3}, r"class label 3 is out of range: this pipeline has 3 classes \(0..2\)"),
        ({"class_labels": [0, -1]}, r"class label -1 is out of range"),
        ({"class_labels": True}, r"a class label is an int or a class name, got True"),
        ({"class_labels": 1.0}, r"a class label is an int or a class name"),
        ({"class_labels": []}, r"empty list; pass None"),
        ({"guidance_scale": -1.0}, r"guidance_scale must be a finite number >= 0, got -1.0"),
        ({"guidance_scale": float("nan")}, r"guidance_scale must be a finite number"),
        ({"num_images_per_class": 0}, r"num_images_per_class must be a positive int, got 0"),
        ({"num_inference_steps": 0}, r"num_inference_steps must be a positive int, got 0"),
        ({"output_type": "jpeg"}, r"output_type must be one of \('pil', 'np', 'pt', 'latent'\), got 'jpeg'"),
        (
            {"callback_on_step_end": lambda *a: {}, "callback_on_step_end_tensor_inputs": ["noise_pred"]},
            r"callback_on_step_end_tensor_inputs must be in \['latents', 'pred_original_sample'\], got \['noise_pred'\]",
        ),
        ({"generator": [seeded(), seeded()]}, r"got 2 generators for 1 images"),
        ({"latents": torch.zeros(1, 4, 8, 8)}, r"latents must have shape \(1, 4, 4, 4\), got \(1, 4, 8, 8\)"),
    ],
    ids=lambda v: str(v)[:40] if isinstance(v, dict) else "",
)
def test_bad_arguments_raise_one_clear_error(pipe, call, message):
    call = {"class_labels": 0, "num_inference_steps": 1, **call}
    with pytest.raises(ValueError, match=message):
        pipe(**call)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match=r"id2label must name the classes 0..2 of the UNet, got ids \['0', '1'\]"):
        LatentDiffusionPipeline(tiny_vae(), tiny_unet(), DDIMScheduler(), id2label={0: "a", 1: "b"})
    with pytest.raises(
        ValueError, match=r"id2label must name the classes 0..2 of the UNet, got ids \['a', '0', '1'\]"
    ):
        LatentDiffusionPipeline(tiny_vae(), tiny_unet(), DDIMScheduler(), id2label={"a": "x", 0: "a", 1: "b"})
    unordered = LatentDiffusionPipeline(tiny_vae(), tiny_unet(), DDIMScheduler(), id2label={2: "c", "0": "a", 1: "b"})
    assert unordered.class_names == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"class names must differ \(case-insensitively\)"):
        LatentDiffusionPipeline(tiny_vae(), tiny_unet(), DDIMScheduler(), id2label={0: "a", 1: "A", 2: "b"})
    with pytest.raises(ValueError, match=r"num_class_embeds = classes \+ 1 >= 2, got 1"):
        LatentDiffusionPipeline(tiny_vae(), tiny_unet(num_classes=0), DDIMScheduler())


# ==================================================================================== callbacks, dtype
def test_callback_sees_and_replaces_latents_and_can_interrupt(pipe):
    seen = []

    def record(p, step, timestep, tensors):
        seen.append((step, int(timestep), tensors["latents"].shape))
        return {}

    pipe(0, num_inference_steps=3, callback_on_step_end=record, output_type="latent")
    assert [s[0] for s in seen] == [0, 1, 2] and all(s[2] == (1, 4, 4, 4) for s in seen)

    def zero_at_the_end(p, step, timestep, tensors):
        return {"latents": torch.zeros_like(tensors["latents"])} if step == p.num_timesteps - 1 else {}

    out = pipe(0, num_inference_steps=3, callback_on_step_end=zero_at_the_end, output_type="latent").images
    assert torch.equal(out, torch.zeros(1, 4, 4, 4))

    steps = []

    def stop_after_one(p, step, timestep, tensors):
        steps.append(step)
        p._interrupt = True
        return {}

    pipe(0, num_inference_steps=5, callback_on_step_end=stop_after_one, output_type="latent")
    assert steps == [0]

    class Halve(PipelineCallback):  # diffusers' callback classes name their tensor inputs themselves
        tensor_inputs = ["latents"]

        def callback_fn(self, p, step, timestep, tensors):
            return {"latents": tensors["latents"] / 2}

    halved = pipe(0, num_inference_steps=1, generator=seeded(), callback_on_step_end=Halve(), output_type="latent")
    plain = pipe(0, num_inference_steps=1, generator=seeded(), output_type="latent")
    torch.testing.assert_close(halved.images, plain.images / 2)


@pytest.mark.parametrize("scheduler", SCHEDULERS, ids=lambda s: s.__name__)
def test_callback_gets_the_schedulers_x0_prediction_which_ends_at_the_sample(scheduler):
    pipe = tiny_pipe(scheduler=scheduler)
    predictions = []

    def record(p, step, timestep, tensors):
        predictions.append(tensors["pred_original_sample"].clone())
        return {}

    out = pipe(
        "one",
        num_images_per_class=2,
        num_inference_steps=4,
        generator=seeded(),
        output_type="latent",
        callback_on_step_end=record,
        callback_on_step_end_tensor_inputs=["pred_original_sample"],
    ).images
    assert len(predictions) == 4 and all(x.shape == out.shape for x in predictions)
    torch.testing.assert_close(predictions[-1], out)  # every scheduler's last step lands on its x0 estimate
    assert not torch.allclose(predictions[0], out)


def test_a_scheduler_without_an_x0_prediction_is_named():
    pipe = tiny_pipe()
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(
        pipe.scheduler.config, algorithm_type="dpmsolver", final_sigmas_type="sigma_min"
    )
    with pytest.raises(ValueError, match="DPMSolverMultistepScheduler does not expose its prediction of x0"):
        pipe(
            0,
            num_inference_steps=2,
            callback_on_step_end=lambda *args: {},
            callback_on_step_end_tensor_inputs=["pred_original_sample"],
        )


def test_to_dtype_samples_in_that_dtype():
    pipe = tiny_pipe().to("cpu", torch.bfloat16)
    assert pipe.unet.dtype == pipe.vae.dtype == torch.bfloat16
    images = pipe(["one", 2], num_inference_steps=2, generator=seeded(), output_type="pt").images
    assert images.shape == (2, 1, 8, 8) and torch.isfinite(images.float()).all()
    reference = tiny_pipe()(["one", 2], num_inference_steps=2, generator=seeded(), output_type="pt").images
    assert (images.float() - reference).abs().max() < 0.1  # same noise, bf16 rounding only


def test_float16_vae_with_force_upcast_decodes_in_float32():
    pipe = tiny_pipe().to("cpu", torch.float16)
    assert pipe.vae.config.force_upcast
    seen = []
    pipe.vae.decoder.register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
    images = pipe(0, num_inference_steps=2, generator=seeded(), output_type="pt").images
    assert seen == [torch.float32] and pipe.vae.dtype == torch.float16 and images.dtype == torch.float16
    assert torch.isfinite(images).all()


def test_one_generator_per_image_reproduces_each_image():
    pipe = tiny_pipe(scheduler=DDIMScheduler)
    both = pipe(1, num_images_per_class=2, generator=[seeded(5), seeded(6)], num_inference_steps=2, output_type="pt")
    second = pipe(1, generator=seeded(6), num_inference_steps=2, output_type="pt")
    torch.testing.assert_close(both.images[1:], second.images, atol=1e-5, rtol=0)


# ==================================================================================== save and load
@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple:
    pipe = tiny_pipe(scheduler=DDPMScheduler)
    folder = tmp_path_factory.mktemp("pipe") / "saved"
    pipe.save_pretrained(folder)
    return pipe, folder


def test_save_pretrained_writes_the_diffusers_layout_in_safetensors(saved):
    _, folder = saved
    names = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert names == {
        "model_index.json",
        "pipeline.py",
        "scheduler/scheduler_config.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
    }
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline", "LatentDiffusionPipeline"]
    assert index["id2label"] == {"0": "Zero", "1": "one", "2": "T-shirt/top"}
    assert index["vae"] == ["diffusers", "AutoencoderKL"] and index["scheduler"] == ["diffusers", "DDPMScheduler"]


def test_round_trip_is_bit_identical(saved):
    pipe, folder = saved
    loaded = LatentDiffusionPipeline.from_pretrained(folder)
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded) is LatentDiffusionPipeline and isinstance(loaded.scheduler, DDPMScheduler)
    assert loaded.class_names == CLASSES
    kwargs = {"class_labels": ["one", 0], "num_images_per_class": 2, "num_inference_steps": 3, "output_type": "np"}
    assert np.array_equal(pipe(generator=seeded(7), **kwargs).images, loaded(generator=seeded(7), **kwargs).images)
    loaded.save_pretrained(folder.parent / "again")  # a loaded pipeline saves the same index
    assert (folder.parent / "again" / "model_index.json").read_text() == (folder / "model_index.json").read_text()


def test_diffusers_diffusion_pipeline_loads_it(saved):
    pipe, folder = saved
    with pytest.raises(ValueError, match="trust_remote_code=True"):  # diffusers' own guard on the pipeline.py loader
        DiffusionPipeline.from_pretrained(folder)
    loaded = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)
    assert type(loaded) is LatentDiffusionPipeline and loaded.class_names == CLASSES
    loaded.set_progress_bar_config(disable=True)
    kwargs = {"class_labels": 2, "num_inference_steps": 2, "output_type": "pt"}
    assert torch.equal(pipe(generator=seeded(1), **kwargs).images, loaded(generator=seeded(1), **kwargs).images)


def test_swapping_in_another_scheduler_after_loading(saved):
    _, folder = saved
    loaded = LatentDiffusionPipeline.from_pretrained(folder)
    loaded.scheduler = EulerDiscreteScheduler.from_config(loaded.scheduler.config)
    loaded.set_progress_bar_config(disable=True)
    assert loaded(0, num_inference_steps=2, output_type="pt").images.shape == (1, 1, 8, 8)
    loaded.save_pretrained(folder.parent / "euler")
    reloaded = LatentDiffusionPipeline.from_pretrained(folder.parent / "euler")
    assert isinstance(reloaded.scheduler, EulerDiscreteScheduler)


# ==================================================================================== with vae-hub's SpatialVAEModel
@pytest.mark.parametrize("channels", [1, 3])
def test_spatial_vae_model_pipeline_samples_saves_and_loads(channels, tmp_path):
    pipe = LatentDiffusionPipeline(
        tiny_spatial_vae(channels),
        tiny_unet(sample_size=8),
        DDIMScheduler(num_train_timesteps=100),
        id2label=dict(enumerate(CLASSES)),
    )
    pipe.set_progress_bar_config(disable=True)
    kwargs = {"class_labels": ["one", "zero"], "num_inference_steps": 2, "output_type": "pt"}
    images = pipe(generator=seeded(), **kwargs).images
    assert images.shape == (2, channels, 12, 12) and 0 <= images.min() <= images.max() <= 1
    latents = pipe(generator=seeded(), **{**kwargs, "output_type": "latent"}).images
    torch.testing.assert_close(images, (pipe.vae.decode(latents / 0.5 + 0.1).sample / 2 + 0.5).clamp(0, 1))

    pipe.save_pretrained(tmp_path / "spatial")
    index = json.loads((tmp_path / "spatial" / "model_index.json").read_text())
    # vae-hub is a library diffusers knows (vae_hub.models.register_with_diffusers): its loader imports it
    assert index["vae"] == ["vae_hub", "SpatialVAEModel"]
    for loaded in (
        LatentDiffusionPipeline.from_pretrained(tmp_path / "spatial"),
        DiffusionPipeline.from_pretrained(tmp_path / "spatial", trust_remote_code=True),
    ):
        assert type(loaded.vae) is SpatialVAEModel and loaded.vae.config.shift_factor == 0.1
        loaded.set_progress_bar_config(disable=True)
        assert torch.equal(loaded(generator=seeded(), **kwargs).images, images)


@pytest.mark.parametrize("library", ["vae_hub", "vae_hub.models.spatial_vae"])
@pytest.mark.parametrize("class_name", ["torch", "no_such_class", "__doc__"])
def test_a_vae_entry_that_is_not_a_model_class_is_named(library, class_name, tmp_path):
    """Issue 29: ``["vae_hub.models.spatial_vae", "torch"]`` (a module imported there) gave an AttributeError."""
    pipe = LatentDiffusionPipeline(
        tiny_spatial_vae(), tiny_unet(sample_size=8), DDIMScheduler(num_train_timesteps=100)
    )
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    (tmp_path / "model_index.json").write_text(json.dumps({**index, "vae": [library, class_name]}))
    with pytest.raises(
        ValueError,
        match=rf"^model_index.json: the vae, {library}.{class_name}, is not a model class "
        r"of vae-hub \(SpatialVAEModel, VAEModel\)$",
    ):
        LatentDiffusionPipeline.from_pretrained(tmp_path)


def test_a_folder_naming_its_vae_by_module_loads_through_diffusers_loader(tmp_path):
    """Folders saved before vae-hub registered itself name the vae ``["vae_hub.models.spatial_vae", ...]``."""
    pipe = LatentDiffusionPipeline(
        tiny_spatial_vae(), tiny_unet(sample_size=8), DDIMScheduler(num_train_timesteps=100)
    )
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    (tmp_path / "model_index.json").write_text(
        json.dumps({**index, "vae": ["vae_hub.models.spatial_vae", "SpatialVAEModel"]})
    )
    loaded = LatentDiffusionPipeline.from_pretrained(tmp_path)
    assert type(loaded.vae) is SpatialVAEModel


def test_hub_repo_with_a_component_from_outside_diffusers(tmp_path, monkeypatch):
    """A Hub repo whose vae is a SpatialVAEModel: diffusers' download takes it, and the pipeline loads it (without the
    repo's code files, which would make diffusers' loader run them)."""
    pipe = LatentDiffusionPipeline(
        tiny_spatial_vae(), tiny_unet(sample_size=8), DDIMScheduler(num_train_timesteps=100)
    )
    pipe.save_pretrained(tmp_path / "saved")
    files = {str(f.relative_to(tmp_path / "saved")): f for f in (tmp_path / "saved").rglob("*") if f.is_file()}
    populate_hf_cache(tmp_path / "hf", "someone/tiny-ldm", files)
    # The Hub as diffusers' download sees it online: the repo's file list, its model_index.json (no network here).
    from diffusers.pipelines import pipeline_loading_utils, pipeline_utils

    monkeypatch.setattr(pipeline_utils, "_resolve_revision", lambda name, revision=None, **kwargs: revision)
    monkeypatch.setattr(
        pipeline_utils,
        "model_info",
        lambda *args, **kwargs: SimpleNamespace(
            siblings=[SimpleNamespace(rfilename=name) for name in files], sha="0" * 40
        ),
    )
    monkeypatch.setattr(pipeline_utils, "hf_hub_download", lambda *args, **kwargs: str(files["model_index.json"]))
    real_snapshot_download = huggingface_hub.snapshot_download  # the same call online, answered from the cache

    def offline(*args, **kwargs):
        return real_snapshot_download(*args, **{**kwargs, "local_files_only": True})

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    # diffusers' own download refuses a component whose library it does not know and whose code the repo lacks
    assert json.loads(files["model_index.json"].read_text())["vae"][0] in pipeline_loading_utils.LOADABLE_CLASSES
    loaded = LatentDiffusionPipeline.from_pretrained("someone/tiny-ldm", cache_dir=tmp_path / "hf")
    assert type(loaded.vae) is SpatialVAEModel
    loaded.set_progress_bar_config(disable=True)
    pipe.set_progress_bar_config(disable=True)
    kwargs = {"num_inference_steps": 2, "output_type": "pt"}
    assert torch.equal(loaded(generator=seeded(), **kwargs).images, pipe(generator=seeded(), **kwargs).images)
