"""The Space's text-to-image views, on one loaded diffusers ``StableDiffusionPipeline`` whose components every view
shares (``StableDiffusionImg2ImgPipeline(**pipe.components)``: no second copy of any weight).

    text_to_image(...)   prompt → images, streaming the decoded x₀ prediction every few steps (``watch``)
    image_to_image(...)  SDEdit: an image noised to ``strength``, then denoised towards the prompt
    inpaint(...)         only the masked part redrawn (the 4-channel UNet's way: the known latents are put back at
                         every step), and how much the rest changed beside the autoencoder's own error
    prompt_walk(...)     one fixed noise, the text embeddings slerped from one prompt to another (and the noise
                         from one seed to another, optionally)
    unknown_words(...)   the prompt's words the tokenizer never met whole in training

Every request gets its own pipeline object with its own scheduler (``request_pipeline``), so concurrent requests
never share sampling state; the weights are shared and read only. Inputs are checked here and refused with an
``InputError`` in one line.
"""

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import PIL.Image
import torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline, StableDiffusionPipeline

from ..images import uint8_to_float
from ..latent import slerp
from ..pipelines.latent_diffusion import predicted_original
from ..pipelines.schedulers import SCHEDULERS, build_scheduler
from ..space_models import InputError, clip
from .checks import MAX_SEED, check_choice, check_float, check_int
from .display import show
from .inputs import prepare_image
from .streaming import watch


MAX_PROMPT_CHARS = 300  # CLDR names are under 100; the tokenizer truncates far sooner anyway
T2I_IMAGES = (1, 16)
T2I_STEPS = (1, 60)
MAX_T2I_GUIDANCE = 15.0
WALK_FRAMES = (3, 16)
PREVIEWS = 5  # x₀ previews streamed per text-to-image request


def check_prompt(prompt, name: str = "Prompt", allow_empty: bool = False) -> str:
    """``prompt`` as a stripped string of at most ``MAX_PROMPT_CHARS``; empty only when ``allow_empty``."""
    if prompt is None:
        prompt = ""
    if not isinstance(prompt, str):
        raise InputError(f"{name} must be text, got {type(prompt).__name__}.")
    prompt = " ".join(prompt.split())
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(f"{name} is {len(prompt)} characters long: at most {MAX_PROMPT_CHARS}, please shorten it.")
    if not prompt and not allow_empty:
        raise InputError(f'{name} is empty: describe an emoji, e.g. "red heart, twemoji style".')
    return prompt


def unknown_words(tokenizer, prompt: str) -> list[str]:
    """The words of ``prompt`` (lower case, letters only) that ``tokenizer`` has no single token for: words it never
    met whole in its training captions, which it can only spell out in pieces."""
    vocabulary = tokenizer.get_vocab()
    words = dict.fromkeys(re.findall(r"[a-z]+", prompt.lower()))
    return [w for w in words if f"{w}</w>" not in vocabulary]


def vocabulary_note(tokenizer, prompt: str) -> str:
    """A line naming the prompt's unknown words, or "" when the tokenizer knows them all."""
    missing = unknown_words(tokenizer, prompt)
    if not missing:
        return ""
    names = ", ".join(f"'{w}'" for w in missing[:8]) + (" …" if len(missing) > 8 else "")
    verb = "is" if len(missing) == 1 else "are"
    return (
        f"{names} {verb} not in this model's vocabulary: it was trained on emoji names, so it reads "
        f"{'that word' if len(missing) == 1 else 'those words'} as unfamiliar pieces."
    )


class WatchedStep:
    """Mixed into a scheduler class: ``step`` remembers the first ``sample`` and timestep it was given (the
    starting latents) and its latest prediction of x₀ (``predicted_original``), for previews."""

    first_sample: torch.Tensor | None = None
    first_timestep: int | None = None
    last_x0: torch.Tensor | None = None

    def step(self, model_output, timestep, sample, *args, return_dict: bool = True, **kwargs):
        if self.first_sample is None:
            self.first_sample, self.first_timestep = sample.clone(), int(timestep)
        out = super().step(model_output, timestep, sample, *args, return_dict=True, **kwargs)
        self.last_x0 = predicted_original(self, out)
        return out if return_dict else out.to_tuple()


_WATCHED: dict[type, type] = {}


def watched_scheduler(name: str, config):
    """A new ``SCHEDULERS[name]`` from ``config`` whose step is watched (``WatchedStep``)."""
    base = type(build_scheduler(name, config))
    if base not in _WATCHED:
        _WATCHED[base] = type(f"Watched{base.__name__}", (WatchedStep, base), {})
    _, options = SCHEDULERS[name]
    return _WATCHED[base].from_config(config, **options)


def request_pipeline(pipe: StableDiffusionPipeline, pipeline_class: type, scheduler: str):
    """A ``pipeline_class`` (text-to-image, img2img, inpaint) on ``pipe``'s components with its own watched
    ``scheduler``: one per request."""
    if scheduler not in SCHEDULERS:
        raise InputError(f"Scheduler must be one of {', '.join(SCHEDULERS)}; got {clip(scheduler)}.")
    components = {**pipe.components, "scheduler": watched_scheduler(scheduler, pipe.scheduler.config)}
    own = pipeline_class(**components, requires_safety_checker=False)  # as the folder says: no safety checker
    own.set_progress_bar_config(disable=True)
    return own


def decode(pipe, latents: torch.Tensor) -> torch.Tensor:
    """Latents (B, 4, h, w) → float images (B, 3, H, W) in [-1, 1] through the pipeline's autoencoder."""
    vae = pipe.vae
    return vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample.float().clamp(-1, 1).cpu()


@dataclass
class Sampling:
    """The checked settings of one request."""

    steps: int
    guidance: float
    seed: int
    scheduler: str


def check_sampling(steps, guidance, seed, scheduler, max_seed: int = MAX_SEED) -> Sampling:
    """The request's settings, each checked (``InputError`` naming the first that is wrong)."""
    return Sampling(
        check_int(steps, "Steps", *T2I_STEPS),
        check_float(guidance, "Guidance", 0.0, MAX_T2I_GUIDANCE),
        check_int(seed, "Seed", 0, max_seed),
        check_choice(scheduler, "Scheduler", tuple(SCHEDULERS)),
    )


def text_to_image(
    pipe: StableDiffusionPipeline,
    prompt: str,
    negative_prompt: str,
    n: int,
    sampling: Sampling,
    previews: int = PREVIEWS,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yields (step, images (n, 3, H, W) in [-1, 1]): the decoded x₀ prediction every ``ceil(steps / previews)``
    steps, then (steps, the final images). Same prompt, settings and seed: the same images as
    ``StableDiffusionPipeline.__call__`` gives."""
    own = request_pipeline(pipe, StableDiffusionPipeline, sampling.scheduler)
    every = math.ceil(sampling.steps / previews) if previews else sampling.steps + 1

    def sample(hand, stopped) -> tuple[int, torch.Tensor]:
        def on_step(p, i, t, tensors):
            if stopped():
                p._interrupt = True  # the pipeline's documented way to stop
            elif (i + 1) % every == 0 and i + 1 < sampling.steps:
                hand((i + 1, decode(p, p.scheduler.last_x0)))
            return {}

        latents = own(
            prompt,
            negative_prompt=negative_prompt or None,
            num_images_per_prompt=n,
            num_inference_steps=sampling.steps,
            guidance_scale=sampling.guidance,
            generator=torch.Generator().manual_seed(sampling.seed),
            output_type="latent",
            callback_on_step_end=on_step,
        ).images
        return sampling.steps, decode(own, latents)

    yield from watch(sample)


def draw(pipe: StableDiffusionPipeline, prompts: list[str], sampling: Sampling) -> torch.Tensor:
    """One image per prompt, (len(prompts), 3, H, W) in [-1, 1], unwatched (Compare's column): the images
    ``StableDiffusionPipeline.__call__`` gives for these prompts, settings and seed."""
    own = request_pipeline(pipe, StableDiffusionPipeline, sampling.scheduler)
    latents = own(
        prompts,
        num_inference_steps=sampling.steps,
        guidance_scale=sampling.guidance,
        generator=torch.Generator().manual_seed(sampling.seed),
        output_type="latent",
    ).images
    return decode(own, latents)


@dataclass
class ImageToImageResult:
    """SDEdit's noised starting point as the autoencoder decodes it, and the result, both (1, 3, H, W) in [-1, 1];
    ``start_timestep``: the noise level it started from (of the scheduler's ``num_train_timesteps``)."""

    start: torch.Tensor
    image: torch.Tensor
    start_timestep: int


def image_to_image(
    pipe: StableDiffusionPipeline,
    image: torch.Tensor,
    prompt: str,
    negative_prompt: str,
    strength: float,
    sampling: Sampling,
) -> ImageToImageResult:
    """SDEdit on a uint8 image (1, 3, H, W): noised to ``strength`` (in (0, 1]: the share of the schedule that is
    run), then denoised towards the prompt by ``StableDiffusionImg2ImgPipeline``."""
    own = request_pipeline(pipe, StableDiffusionImg2ImgPipeline, sampling.scheduler)
    with torch.inference_mode():
        latents = own(
            prompt,
            image=(uint8_to_float(image) + 1) / 2,
            strength=strength,
            negative_prompt=negative_prompt or None,
            num_inference_steps=sampling.steps,
            guidance_scale=sampling.guidance,
            generator=torch.Generator().manual_seed(sampling.seed),
            output_type="latent",
        ).images
        return ImageToImageResult(
            decode(own, own.scheduler.first_sample), decode(own, latents), int(own.scheduler.first_timestep)
        )


@dataclass
class InpaintResult:
    """The inpainted image (1, 3, H, W) in [-1, 1], and PSNRs (dB) of the unmasked part against the input: after
    inpainting, and after the autoencoder's plain reconstruction (what the latent round trip alone costs)."""

    image: torch.Tensor
    unmasked_psnr: float
    reconstruction_psnr: float


def psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor) -> float:
    """PSNR (dB) between images in [-1, 1] over the pixels where ``where`` (H, W) is true; inf if identical."""
    mse = ((a - b) ** 2).mean(dim=1)[0][where].mean().item() / 4  # on the [0, 1] scale
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def inpaint(
    pipe: StableDiffusionPipeline,
    image: torch.Tensor,
    mask: torch.Tensor,
    prompt: str,
    negative_prompt: str,
    sampling: Sampling,
) -> InpaintResult:
    """Redraw where ``mask`` (H, W) bool is true in a uint8 image (1, 3, H, W), with the inpaint pipeline's
    4-channel-UNet mode: outside the (latent-resolution) mask, the latents of the image, noised to the current
    step, are put back after every step."""
    if not mask.any():
        raise InputError("The mask is empty: paint over the part of the image to redraw.")
    if mask.all():
        raise InputError("The mask covers the whole image: leave some of it unpainted, or use text to image.")
    own = request_pipeline(pipe, StableDiffusionInpaintPipeline, sampling.scheduler)
    x = uint8_to_float(image)
    with torch.inference_mode():
        out = (
            own(
                prompt,
                image=(x + 1) / 2,
                mask_image=mask[None, None].float(),
                negative_prompt=negative_prompt or None,
                num_inference_steps=sampling.steps,
                guidance_scale=sampling.guidance,
                strength=1.0,
                height=x.shape[-2],
                width=x.shape[-1],
                generator=torch.Generator().manual_seed(sampling.seed),
                output_type="pt",
            ).images
            * 2
            - 1
        )
        vae = pipe.vae
        reconstruction = vae.decode(vae.encode(x.to(vae.dtype)).latent_dist.mode()).sample.float().clamp(-1, 1)
    keep = ~mask
    return InpaintResult(out.cpu(), psnr(out.cpu(), x, keep), psnr(reconstruction.cpu(), x, keep))


@torch.inference_mode()
def prompt_walk(
    pipe: StableDiffusionPipeline,
    prompt_a: str,
    prompt_b: str,
    frames: int,
    sampling: Sampling,
    seed_b: int | None = None,
) -> torch.Tensor:
    """``frames`` images (F, 3, H, W) in [-1, 1] from one noise, the text embedding slerped from ``prompt_a`` to
    ``prompt_b`` (and the noise from ``sampling.seed``'s to ``seed_b``'s when given)."""
    own = request_pipeline(pipe, StableDiffusionPipeline, sampling.scheduler)
    embeds, empty = own.encode_prompt([prompt_a, prompt_b], "cpu", 1, True, [""] * 2)
    prompt_embeds = slerp(embeds[0].flatten(), embeds[1].flatten(), frames).view(frames, *embeds.shape[1:])
    shape = (own.unet.config.in_channels, own.unet.config.sample_size, own.unet.config.sample_size)
    noise_a = torch.randn(shape, generator=torch.Generator().manual_seed(sampling.seed))
    noise = noise_a.expand(frames, *shape)
    if seed_b is not None:
        noise_b = torch.randn(shape, generator=torch.Generator().manual_seed(seed_b))
        noise = slerp(noise_a.flatten(), noise_b.flatten(), frames).view(frames, *shape)
    latents = own(
        prompt_embeds=prompt_embeds,
        negative_prompt_embeds=empty[:1].expand(frames, -1, -1),
        latents=noise * own.scheduler.init_noise_sigma,
        num_inference_steps=sampling.steps,
        guidance_scale=sampling.guidance,
        output_type="latent",
    ).images
    return decode(own, latents)


def mask_from_editor(value, size: int) -> tuple[PIL.Image.Image, torch.Tensor]:
    """A ``gr.ImageEditor`` value → (its background image, the painted mask (size, size) bool at the model's size).

    The mask is every pixel that any layer painted (alpha > 0), cropped and resized as the image is."""
    if not isinstance(value, dict) or value.get("background") is None:
        raise InputError("No image to inpaint: upload one or pick an example, then paint the part to redraw.")
    background = value["background"]
    if not isinstance(background, PIL.Image.Image):
        background = PIL.Image.fromarray(np.asarray(background))
    painted = np.zeros(background.size[::-1], dtype=bool)
    for layer in value.get("layers") or []:
        if not isinstance(layer, PIL.Image.Image):
            layer = PIL.Image.fromarray(np.asarray(layer))
        if layer.size != background.size:
            raise InputError("The mask layer and the image differ in size: paint on the image itself.")
        painted |= np.asarray(layer.convert("RGBA").getchannel("A")) > 0
    mask = PIL.Image.fromarray(painted.astype(np.uint8) * 255)
    w, h = mask.size
    side = min(w, h)
    mask = mask.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)).resize((size, size))
    return background, torch.from_numpy(np.asarray(mask) >= 128)


def image_config(pipe: StableDiffusionPipeline) -> SimpleNamespace:
    """What ``prepare_image`` needs of a model, for this pipeline's images (RGB at the UNet's size × the VAE's factor)."""
    return SimpleNamespace(
        config=SimpleNamespace(in_channels=3, sample_size=pipe.unet.config.sample_size * pipe.vae_scale_factor)
    )


def recommended_setting(entry):
    """How the Space samples a text-to-image model by default: the setting its folder recommends (measured,
    ``metrics.json``), else ``StableDiffusionPipeline.__call__``'s own defaults with the folder's scheduler."""
    from ..text_to_image_evaluation import default_setting, read_recommended

    return read_recommended(str(entry.loaded.folder)) or default_setting(entry.model)


class TextToImageEndpoints:
    """The text-to-image endpoints of ``Explorer`` (a mixin: it provides ``entry(model_id)`` and ``files``). Each
    takes a model id first; settings left as None are the model's ``recommended_setting``."""

    def text_to_image_defaults(self, model_id) -> dict:
        """The model's recommended steps, guidance and scheduler, for the widgets."""
        setting = recommended_setting(self.entry(model_id))
        return {
            "steps": setting.num_inference_steps,
            "guidance": setting.guidance_scale,
            "scheduler": setting.scheduler,
        }

    def _sampling(self, entry, steps, guidance, seed, scheduler) -> Sampling:
        default = recommended_setting(entry)
        return check_sampling(
            default.num_inference_steps if steps is None else steps,
            default.guidance_scale if guidance is None else guidance,
            seed,
            scheduler or default.scheduler,
            MAX_SEED,
        )

    def _pipeline_image(self, entry, image) -> torch.Tensor:
        x, _ = prepare_image(image, image_config(entry.model), dark_background=False, invert=False)
        return x

    def text_to_image(
        self, model_id, prompt="", negative_prompt="", num_images=4, steps=None, guidance=None, seed=0, scheduler=None
    ) -> Iterator[tuple]:
        """/text_to_image, streamed: (preview grid, None, None, note) every few steps, then (grid, grid, GIF of the
        denoising, note); the note names the prompt's words the model never learned."""
        entry = self.entry(model_id)
        pipe = entry.require_text_to_image("text to image")
        prompt, negative = check_prompt(prompt), check_prompt(negative_prompt, "Negative prompt", allow_empty=True)
        n = check_int(num_images, "Number of images", *T2I_IMAGES)
        sampling = self._sampling(entry, steps, guidance, seed, scheduler)
        note = vocabulary_note(pipe.tokenizer, f"{prompt} {negative}")
        for grid, final, gif in self.streamed_grids(
            text_to_image(pipe, prompt, negative, n, sampling), sampling.steps
        ):
            yield grid, final, gif, note

    def image_to_image(
        self,
        model_id,
        image=None,
        prompt="",
        negative_prompt="",
        strength=0.6,
        steps=None,
        guidance=None,
        seed=0,
        scheduler=None,
    ) -> tuple:
        """/image_to_image → (the noised starting point, the result, a line saying what was done)."""
        entry = self.entry(model_id)
        pipe = entry.require_text_to_image("image to image")
        prompt, negative = check_prompt(prompt), check_prompt(negative_prompt, "Negative prompt", allow_empty=True)
        strength = check_float(strength, "Strength", 0.05, 1.0)
        sampling = self._sampling(entry, steps, guidance, seed, scheduler)
        result = image_to_image(pipe, self._pipeline_image(entry, image), prompt, negative, strength, sampling)
        runs = min(int(sampling.steps * strength), sampling.steps)
        note = (
            f"Noised to step {result.start_timestep} of {pipe.scheduler.config.num_train_timesteps}, then "
            f"{runs} of {sampling.steps} denoising steps. {vocabulary_note(pipe.tokenizer, prompt)}"
        ).strip()
        return show(result.start, nrow=1, width=256), show(result.image, nrow=1, width=256), note

    def inpaint(
        self, model_id, editor=None, prompt="", negative_prompt="", steps=None, guidance=None, seed=0, scheduler=None
    ) -> tuple:
        """/inpaint → (the image with its masked part redrawn, a line on how much the rest changed)."""
        entry = self.entry(model_id)
        pipe = entry.require_text_to_image("inpainting")
        prompt, negative = check_prompt(prompt), check_prompt(negative_prompt, "Negative prompt", allow_empty=True)
        sampling = self._sampling(entry, steps, guidance, seed, scheduler)
        size = image_config(pipe).config.sample_size
        background, mask = mask_from_editor(editor, size)
        result = inpaint(pipe, self._pipeline_image(entry, background), mask, prompt, negative, sampling)
        share = mask.float().mean().item()
        note = (
            f"Redrew {share:.0%} of the image. The rest changed by PSNR {result.unmasked_psnr:.1f} dB, against "
            f"{result.reconstruction_psnr:.1f} dB for the autoencoder's own round trip of the same pixels (the "
            f"mask works on the {pipe.vae_scale_factor}× smaller latents, so its edges are blocky)."
        )
        return show(result.image, nrow=1, width=256), note

    def prompt_walk(
        self,
        model_id,
        prompt_a="",
        prompt_b="",
        frames=8,
        seed=0,
        seed_b=None,
        steps=None,
        guidance=None,
        scheduler=None,
    ) -> tuple:
        """/prompt_walk → (a strip of the frames, their GIF): one noise, the text embedding slerped from prompt A to
        prompt B (and the noise from ``seed`` to ``seed_b`` when one is given)."""
        entry = self.entry(model_id)
        pipe = entry.require_text_to_image("prompt walk")
        prompt_a, prompt_b = check_prompt(prompt_a, "Prompt A"), check_prompt(prompt_b, "Prompt B")
        frames = check_int(frames, "Frames", *WALK_FRAMES)
        blank = seed_b is None or (isinstance(seed_b, str) and not seed_b.strip())  # the box left empty
        seed_b = None if blank else check_int(seed_b, "Seed B", 0, MAX_SEED)
        images = prompt_walk(
            pipe, prompt_a, prompt_b, frames, self._sampling(entry, steps, guidance, seed, scheduler), seed_b
        )
        return show(images, nrow=frames, width=768), self.files.gif(images)
