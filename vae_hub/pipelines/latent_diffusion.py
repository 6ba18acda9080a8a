"""``LatentDiffusionPipeline``: class-conditional latent diffusion, a miniature Stable Diffusion on a VAE's latents.

    noise (B, c, h, w) ──UNet2DModel(t, class label) × scheduler steps──▶ latents ──vae.decode(z / scale + shift)──▶
    images in [-1, 1] ──▶ PIL | numpy (B, H, W, C) in [0, 1] | torch (B, C, H, W) in [0, 1]

The class labels play the part of Stable Diffusion's text prompt: the UNet's class embedding has one entry per class
and one more, the last, meaning "no class". Training drops labels to it at random, so the same UNet predicts both the
conditional and the unconditional noise, which classifier-free guidance combines. Conventions are diffusers'
``DiTPipeline`` ones (``ImagePipelineOutput``, ``guidance_scale > 1`` turns guidance on, "pt" images in [0, 1]).

Class names are stored in ``model_index.json`` as ``id2label`` ({"0": name, ...}), as ``DiTPipeline`` does: a list
there would be taken for a ``[library, class]`` component when the pipeline is downloaded from the Hub.

Saving and loading (``model_index.json``, the ``pipeline.py`` loader, Hub downloads) are
``vae_hub.models.pipeline_loading.PipelineLoadingMixin``'s; this file only samples.
"""

import inspect
from typing import Any, Callable

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput, UNet2DModel
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.image_processor import VaeImageProcessor
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor

from ..models.pipeline_loading import PipelineLoadingMixin
from ..pipeline_defaults import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS


OUTPUT_TYPES = ("pil", "np", "pt", "latent")
EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import torch
        >>> from vae_hub import LatentDiffusionPipeline

        >>> pipe = LatentDiffusionPipeline.from_pretrained("space/models/fashion-mnist-ldm")
        >>> generator = torch.Generator().manual_seed(0)
        >>> images = pipe(class_labels=["Sneaker", "bag", 0], num_images_per_class=2, generator=generator).images
        >>> images[0].save("sneaker.png")  # PIL images, two of each class, in the order asked
        ```
"""


class LatentDiffusionPipeline(PipelineLoadingMixin, DiffusionPipeline):
    r"""Class-conditional latent diffusion with classifier-free guidance.

    Args:
        vae: a spatial autoencoder with diffusers' ``AutoencoderKL`` interface (``vae_hub.SpatialVAEModel`` or
            ``diffusers.AutoencoderKL``): ``decode(z).sample`` in [-1, 1], ``config.scaling_factor`` and
            ``config.shift_factor`` (None or a number).
        unet: ``UNet2DModel`` on the latents: ``in_channels = out_channels = vae.config.latent_channels``,
            ``sample_size`` = the latent size, ``num_class_embeds`` = number of classes + 1 (the last label is
            "no class"), or ``num_class_embeds=None`` for an unconditional model.
        scheduler: any diffusers scheduler (DDPM, DDIM, DPMSolverMultistep, EulerDiscrete, ...), configured with the
            ``prediction_type`` the UNet was trained for and, for DDPM/DDIM, ``clip_sample=False`` (latents are not
            images in [-1, 1]).
        id2label: class names by label id ({0: "T-shirt/top", ...}); default: the ids as text.
    """

    model_cpu_offload_seq = "unet->vae"
    _callback_tensor_inputs = ["latents", "pred_original_sample"]

    def __init__(
        self,
        vae: Any,
        unet: UNet2DModel,
        scheduler: SchedulerMixin,
        id2label: dict | None = None,
    ):
        super().__init__()
        num_classes = num_classes_of(unet)
        if id2label is not None:
            ids = [str(i) for i in range(num_classes)]
            id2label = {str(k): str(v) for k, v in id2label.items()}
            if set(id2label) != set(ids):
                raise ValueError(
                    f"id2label must name the classes 0..{num_classes - 1} of the UNet, got ids {list(id2label)}"
                )
            id2label = {i: id2label[i] for i in ids}  # in label order (JSON keys are text)
            names = [name.casefold() for name in id2label.values()]
            if len(set(names)) != len(names):
                raise ValueError(f"class names must differ (case-insensitively): {list(id2label.values())}")
        self.register_modules(vae=vae, unet=unet, scheduler=scheduler)
        self.register_to_config(id2label=id2label)
        self.image_processor = VaeImageProcessor(vae_scale_factor=1)

    # ------------------------------------------------------------------------------------------ class labels
    @property
    def num_classes(self) -> int:
        """Classes the UNet is conditioned on (0 for an unconditional model)."""
        return num_classes_of(self.unet)

    @property
    def class_names(self) -> list[str]:
        """Names of the classes, indexed by label id."""
        if self.config.id2label is None:
            return [str(i) for i in range(self.num_classes)]
        return list(self.config.id2label.values())

    @property
    def labels(self) -> dict[str, int]:
        """Class name → label id (as ``DiTPipeline.labels``)."""
        return {name: i for i, name in enumerate(self.class_names)}

    def get_label_ids(self, label: int | str | list[int | str]) -> list[int]:
        """Label ids of class names (case-insensitive) or ids; raises ValueError for an unknown one."""
        labels = label if isinstance(label, (list, tuple)) else [label]
        if not labels:
            raise ValueError("class_labels is an empty list; pass None for unconditional samples")
        if self.num_classes == 0:
            raise ValueError("this pipeline's UNet is unconditional (no class embedding): pass class_labels=None")
        by_name = {name.casefold(): i for i, name in enumerate(self.class_names)}
        ids = []
        for item in labels:
            if isinstance(item, str):
                if item.casefold() not in by_name:
                    raise ValueError(f"unknown class {item!r}; the classes are {self.class_names}")
                ids.append(by_name[item.casefold()])
            elif (
                isinstance(item, int)
                and not isinstance(item, bool)
                or isinstance(item, torch.Tensor)
                and item.ndim == 0
            ):
                if not 0 <= int(item) < self.num_classes:
                    raise ValueError(
                        f"class label {int(item)} is out of range: this pipeline has "
                        f"{self.num_classes} classes (0..{self.num_classes - 1}), {self.class_names}"
                    )
                ids.append(int(item))
            else:
                raise ValueError(f"a class label is an int or a class name, got {item!r}")
        return ids

    # ------------------------------------------------------------------------------------------ sampling
    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._do_classifier_free_guidance

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        class_labels: int | str | list[int | str] | None = None,
        num_images_per_class: int = 1,
        num_inference_steps: int = DEFAULT_NUM_INFERENCE_STEPS,
        guidance_scale: float = DEFAULT_GUIDANCE_SCALE,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006 - diffusers' signature
    ) -> ImagePipelineOutput | tuple:
        r"""Sample images, ``num_images_per_class`` of each class in ``class_labels`` (class by class).

        Args:
            class_labels: a class id, a class name (case-insensitive), or a list of them; None samples
                unconditionally (the "no class" label, no guidance).
            num_images_per_class: images for each entry of ``class_labels`` (for None: images in all).
            num_inference_steps: denoising steps of the scheduler.
            guidance_scale: classifier-free guidance weight w, noise = uncond + w · (cond − uncond); on when w > 1
                (each step then runs the UNet on a doubled batch), w ≤ 1 samples from the conditional model alone.
            generator: a ``torch.Generator`` (or one per image) for the initial noise and stochastic schedulers.
            latents: initial noise (B, c, h, w) instead of drawing it; scaled by ``scheduler.init_noise_sigma``.
            output_type: "pil" (list of PIL images), "np" (B, H, W, C) float in [0, 1], "pt" (B, C, H, W) in
                [0, 1], or "latent" (the denoised latents (B, c, h, w) in the UNet's scale, not decoded).
            return_dict: an ``ImagePipelineOutput`` (True) or a tuple ``(images,)``.
            callback_on_step_end: ``callback(pipe, step, timestep, {name: tensor})`` after each step; a returned
                ``latents`` replaces the current one. ``pipe._interrupt = True`` stops the loop early.
            callback_on_step_end_tensor_inputs: the tensors passed to it: "latents" (after the step) and
                "pred_original_sample" (the scheduler's estimate of the final latents x₀ at this step, in the UNet's
                scale: decode it with ``decode_latents`` to watch the denoising; see ``predicted_original``).

        Examples:

        Returns:
            ``ImagePipelineOutput(images=...)``, images of the labels in the order asked.
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        self.check_inputs(
            num_images_per_class, num_inference_steps, guidance_scale, output_type, callback_on_step_end_tensor_inputs
        )
        device = self._execution_device
        conditional = class_labels is not None
        ids = self.get_label_ids(class_labels) if conditional else [self.num_classes]  # the "no class" label
        labels = torch.tensor(ids, device=device).repeat_interleave(num_images_per_class)
        batch_size = len(labels)
        self._guidance_scale = guidance_scale
        self._do_classifier_free_guidance = conditional and guidance_scale > 1
        self._interrupt = False
        if self.do_classifier_free_guidance:  # [conditional, unconditional] in one UNet call
            labels = torch.cat([labels, torch.full_like(labels, self.num_classes)])
        if self.num_classes == 0:
            labels = None

        shape = (batch_size, self.unet.config.in_channels, self.unet.config.sample_size, self.unet.config.sample_size)
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(f"got {len(generator)} generators for {batch_size} images; pass one or one per image")
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=self.unet.dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
        else:
            latents = latents.to(device=device, dtype=self.unet.dtype)
        latents = latents * self.scheduler.init_noise_sigma

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        self._num_timesteps = len(timesteps)
        step_kwargs = self.scheduler_step_kwargs(generator)
        for i, t in enumerate(self.progress_bar(timesteps)):
            if self.interrupt:
                break
            model_input = torch.cat([latents] * 2) if self.do_classifier_free_guidance else latents
            model_input = self.scheduler.scale_model_input(model_input, t)
            noise_pred = self.unet(model_input, t.expand(len(model_input)), class_labels=labels, return_dict=False)[0]
            if self.do_classifier_free_guidance:
                cond, uncond = noise_pred.chunk(2)
                noise_pred = uncond + guidance_scale * (cond - uncond)
            step = self.scheduler.step(noise_pred, t, latents, **step_kwargs)
            latents = step.prev_sample
            if callback_on_step_end is not None:
                tensors = {"latents": latents}
                if "pred_original_sample" in callback_on_step_end_tensor_inputs:
                    tensors["pred_original_sample"] = predicted_original(self.scheduler, step)
                outputs = callback_on_step_end(self, i, t, tensors)
                latents = outputs.pop("latents", latents)

        if output_type == "latent":
            images = latents
        else:
            images = self.image_processor.postprocess(self.decode_latents(latents), output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """UNet-scale latents (B, c, h, w) → images (B, C, H, W) in [-1, 1], in the VAE's dtype.

        A float16 VAE whose config asks for it (``force_upcast``, diffusers' convention) decodes in float32.
        """
        dtype = self.vae.dtype
        upcast = dtype == torch.float16 and getattr(self.vae.config, "force_upcast", False)
        if upcast:
            self.vae.to(torch.float32)
        images = self.vae.decode(self.unscale_latents(latents).to(self.vae.dtype), return_dict=False)[0]
        if upcast:
            self.vae.to(dtype)
        return images.to(dtype)

    def unscale_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """UNet-scale latents (unit variance) → the VAE's latents: ``z / scaling_factor + shift_factor``."""
        latents = latents / self.vae.config.scaling_factor
        shift = getattr(self.vae.config, "shift_factor", None)
        return latents + shift if shift is not None else latents

    def check_inputs(self, num_images_per_class, num_inference_steps, guidance_scale, output_type, tensor_inputs):
        if not isinstance(num_images_per_class, int) or num_images_per_class < 1:
            raise ValueError(f"num_images_per_class must be a positive int, got {num_images_per_class!r}")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive int, got {num_inference_steps!r}")
        if not (isinstance(guidance_scale, (int, float)) and 0 <= guidance_scale < float("inf")):
            raise ValueError(f"guidance_scale must be a finite number >= 0, got {guidance_scale!r}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        unknown = [k for k in tensor_inputs if k not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs must be in {self._callback_tensor_inputs}, got {unknown}"
            )

    def scheduler_step_kwargs(self, generator) -> dict:
        """The generator for schedulers whose step draws noise (DDPM, Euler ancestral, SDE solvers)."""
        accepts = "generator" in inspect.signature(self.scheduler.step).parameters
        return {"generator": generator} if accepts else {}


def predicted_original(scheduler: SchedulerMixin, step_output) -> torch.Tensor:
    """The scheduler's estimate of the clean sample x₀ at the step that returned ``step_output`` (same shape as the
    latents): DDPM, DDIM and Euler return it; DPM-Solver++ (multistep) keeps it as its latest model output, the
    data prediction its update extrapolates from. A ``ValueError`` for a scheduler that exposes neither."""
    x0 = getattr(step_output, "pred_original_sample", None)
    if x0 is None and getattr(scheduler.config, "algorithm_type", None) in ("dpmsolver++", "sde-dpmsolver++"):
        x0 = getattr(scheduler, "model_outputs", [None])[-1]
    if x0 is None:
        raise ValueError(
            f"{type(scheduler).__name__} does not expose its prediction of x0 (pred_original_sample): "
            "use DDPM, DDIM, Euler or DPM-Solver++ to watch the denoising"
        )
    return x0


def num_classes_of(unet: UNet2DModel) -> int:
    """Classes of a class-conditional UNet (its embeddings less the "no class" one); 0 when it has none."""
    embeds = unet.config.num_class_embeds
    if embeds is None:
        return 0
    if embeds < 2:
        raise ValueError(f"a class-conditional UNet needs num_class_embeds = classes + 1 >= 2, got {embeds}")
    return embeds - 1
