"""``Explorer``: the Space's endpoints, one method each, taking a model id first."""

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import PIL.Image
import torch

from ..latent import encode_images
from ..loading import PIPELINE_INDEX_NAME
from ..models import AutoencoderKLWithLikelihood
from ..pipelines import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS
from ..pipelines.schedulers import SCHEDULERS
from ..space_models import MAX_MODEL_BYTES, InputError, ModelCache, ModelLoader, hub_ids_allowed, public_ids
from .about import about_markdown, pipeline_about_markdown, text_to_image_about_markdown
from .checks import (
    ANY_CLASS,
    DIFFUSE_IMAGES,
    DIFFUSE_STEPS,
    GIF_WIDTH,
    MANIFOLD_RANGE,
    MANIFOLD_WIDTH,
    MAX_GUIDANCE,
    MAX_SEED,
    SOURCES,
    STARTS,
    TRAVERSE_RANGE,
    TRAVERSE_SLIDERS,
    check_choice,
    check_float,
    check_int,
    check_point,
)
from .diffusion import (
    COMPARE_NOTE,
    class_labels,
    denoise,
    different_data_note,
    pipeline_defaults,
    quality_caption,
    quality_record,
    quality_table,
    same_data,
)
from .display import display_scale, show
from .entry import ModelEntry
from .files import OutputFiles
from .inputs import prepare_image, sketch_to_image
from .kinds import KIND_NAMES, TABS, _read_json, default_model_ids, folder_kind, recorded_data_name
from .latent_map import manifold, mark_point
from .reconstruction import reconstruct
from .records import TEXT_TO_IMAGE_NOTE, TEXT_TO_IMAGE_RECORD, comparable_record, measured_by, records_markdown
from .text_to_image import TextToImageEndpoints, check_prompt, check_sampling, draw, recommended_setting
from .vector import interpolate, sample_images, traverse


class Explorer(TextToImageEndpoints):
    """The Space's endpoints: each method takes a model id first and returns the values of its output widgets.

    Model ids are the offered ones (``model_ids``: shipped names and the owner's configured ids) and, when
    ``allow_hub``, any Hub repo id; ``space_models.ModelLoader`` resolves and loads them within bounds. The
    ``max_models`` most recently used models stay in memory (``space_models.ModelCache``).
    """

    def __init__(
        self,
        model_ids: list[str],
        shipped: dict[str, Path],
        files: OutputFiles | None = None,
        max_models: int = 4,
        allow_hub: bool = False,
        max_model_bytes: int = MAX_MODEL_BYTES,
    ):
        model_ids, configured = public_ids(model_ids, shipped)  # a configured folder by its name, not its path
        self.model_ids, self.shipped = model_ids, shipped
        self.files = files or OutputFiles.temporary()
        self.loader = ModelLoader(model_ids, shipped, allow_hub, max_model_bytes, configured)
        self.models = ModelCache(self.loader, max_models, ModelEntry)

    @classmethod
    def from_space_dir(cls, space_dir: str | Path, env: dict | None = None) -> "Explorer":
        """The Explorer of a Space folder: models as ``default_model_ids`` finds them, Hub ids typed by visitors
        only if ``VAE_HUB_SPACE_HUB_IDS`` says so."""
        return cls(*default_model_ids(Path(space_dir), env), allow_hub=hub_ids_allowed(env))

    @property
    def default_model(self) -> str | None:
        return self.model_ids[0] if self.model_ids else None

    def entry(self, model_id) -> ModelEntry:
        """The loaded model for ``model_id`` (loading it on first use), or an ``InputError`` saying why not."""
        return self.models.get(model_id)

    def warm(self, model_id) -> str | None:
        """Load a model and compute what the Space derives from it now, so the first visitor does not wait.
        Returns the problem, if there is one, instead of raising: the Space still starts and shows it."""
        try:
            entry = self.entry(model_id)
            if entry.kind == "vector":
                entry.kl, entry.latent_map  # noqa: B018 (computed and cached on access)
            if entry.kind not in ("pipeline", "text-to-image"):
                entry.dark_background  # noqa: B018
        except InputError as err:
            return str(err)
        return None

    def sample(self, model_id, n=16, seed=0, temperature=1.0, prior="standard") -> PIL.Image.Image:
        """/sample → the grid of ``n`` samples."""
        return sample_images(self.entry(model_id).require_vector("prior samples"), n, seed, temperature, prior)

    def reconstruct(self, model_id, image) -> tuple:
        """/reconstruct → (input as the model sees it, reconstruction, posterior chart, code, summary)."""
        entry = self.entry(model_id)
        model = entry.require_autoencoder("reconstruction")
        x, notes = prepare_image(image, model, entry.dark_background)
        return reconstruct(model, x, notes).astuple()

    def reconstruct_sketch(self, model_id, sketch) -> tuple:
        """/reconstruct_sketch: the same for a ``gr.Sketchpad`` value (strokes become white on black)."""
        entry = self.entry(model_id)
        model = entry.require_autoencoder("reconstruction")
        x, notes = prepare_image(sketch_to_image(sketch), model, entry.dark_background)
        return reconstruct(model, x, notes).astuple()

    def _code(self, entry: ModelEntry, source: str, image, seed, which: str) -> torch.Tensor:
        if source == "seeds":
            seed = check_int(seed, f"Seed {which}", 0, MAX_SEED)
            return entry.model.sample_prior(1, generator=torch.Generator().manual_seed(seed))[0]
        if image is None:
            raise InputError(f"Image {which} is missing: upload or pick one, or interpolate between seeds.")
        x, _ = prepare_image(image, entry.model, entry.dark_background)
        return encode_images(entry.model, x)[0]

    def interpolate(
        self, model_id, source="seeds", image_a=None, image_b=None, seed_a=0, seed_b=1, method="slerp", steps=10
    ) -> tuple:
        """/interpolate → (strip of frames, animated GIF path) between two images' codes or two prior samples."""
        entry = self.entry(model_id)
        entry.require_autoencoder("interpolation between codes")
        check_choice(source, "Interpolate between", SOURCES)
        if entry.spatial and source == "seeds":
            raise InputError(
                f"{entry.model_id} is {KIND_NAMES['spatial']}: it has no prior to draw codes from "
                "seeds, so it interpolates between two images' latent maps: choose images."
            )
        z0, z1 = (self._code(entry, source, im, s, w) for im, s, w in ((image_a, seed_a, "A"), (image_b, seed_b, "B")))
        return interpolate(entry.model, z0, z1, method, steps, self.files)

    def slider_updates(self, model_id) -> list[dict]:
        """Settings for this model of the ``TRAVERSE_SLIDERS`` sliders (label, visibility, value 0), then of
        the sweep selector: one choice per visible slider, named as its slider (``z4``), valued by its rank."""
        entry = self.entry(model_id)
        if entry.kind != "vector":  # nothing to traverse: every slider and the sweep hidden (the tab says why when
            return [{"visible": False}] * (TRAVERSE_SLIDERS + 1)  # used); values kept: a change would run /traverse
        dims = entry.slider_dims
        shown = [{"label": f"z{d}  ·  KL {kl:.2f} nats", "visible": True, "value": 0.0} for d, kl in dims]
        hidden = [{"visible": False, "value": 0.0}] * (TRAVERSE_SLIDERS - len(dims))
        sweep = [(f"z{d}", rank + 1) for rank, (d, _) in enumerate(dims)]
        return shown + hidden + [{"choices": sweep, "value": 1, "interactive": len(dims) > 1, "visible": True}]

    def traverse(self, model_id, start="origin", image=None, sweep=1, *offsets) -> tuple:
        """/traverse → (decoded image, sweep row). Offsets move the sliders' dimensions from the start code
        (the origin, or the image's posterior mean); ``sweep`` is the 1-based slider whose dimension is swept."""
        entry = self.entry(model_id)
        entry.require_vector("latent traversal")
        check_choice(start, "Start", STARTS)
        dims = [d for d, _ in entry.slider_dims]
        if len(offsets) != TRAVERSE_SLIDERS:
            raise InputError(f"Expected {TRAVERSE_SLIDERS} slider values, got {len(offsets)}.")
        offsets = [check_float(v, f"Slider {i + 1}", -TRAVERSE_RANGE, TRAVERSE_RANGE) for i, v in enumerate(offsets)]
        sweep = check_int(sweep, "Swept slider", 1, len(dims))
        if start == "image":
            if image is None:
                raise InputError(
                    "Start is 'image' but no image was given: upload or pick one, or start at the origin."
                )
            x, _ = prepare_image(image, entry.model, entry.dark_background)
            base = encode_images(entry.model, x)[0]
        else:
            base = torch.zeros(entry.model.config.latent_dim)
        return traverse(entry.model, base, dims, offsets[: len(dims)], sweep - 1)

    def latent_map(self, model_id) -> tuple[PIL.Image.Image | None, str]:
        """/latent_map → (scatter plot of the codes of the model's own held-out sample, a description of the
        plane), or (None, why this model has no map)."""
        entry = self.entry(model_id)
        if entry.spatial:
            return None, (
                "**No latent map for this model**: it is a spatial autoencoder, whose latents are maps, "
                "not points of a plane; its Reconstruct tab shows them."
            )
        if entry.kind == "pipeline":
            return None, (
                "**No latent map for this model**: it is a latent diffusion pipeline, which draws images "
                "from noise step by step; its Diffuse tab shows how."
            )
        if entry.kind == "text-to-image":
            return None, (
                "**No latent map for this model**: it is a text-to-image pipeline, which draws images "
                "from a prompt step by step; its Text to image tab shows how."
            )
        m = entry.latent_map
        return (m.image, m.description) if m else (None, f"**No latent map for this model**: {entry.sample_problem}.")

    def manifold(self, model_id, n=15) -> PIL.Image.Image | None:
        """/manifold → the decoded n×n grid over the latent map's plane (computed once per model and n: every
        visitor's page shows it), or None for a model without a map (``latent_map`` says why)."""
        entry = self.entry(model_id)
        n = check_int(n, "Grid size", *MANIFOLD_RANGE)
        if entry.kind != "vector" or entry.latent_map is None:
            return None
        return entry._once(f"manifold-{n}", lambda: manifold(entry.model, entry.latent_map, n))

    def decode_point(self, model_id, x=0.0, y=0.0) -> tuple[PIL.Image.Image, PIL.Image.Image]:
        """/decode_point → (decoded code at plane point (x, y), the scatter plot marked there)."""
        entry = self.entry(model_id)
        x, y = check_point(x, y)
        m = entry.require_map()
        with torch.inference_mode():
            image = entry.model.decode(m.code(x, y)[None]).sample
        return show(image, nrow=1, width=336), mark_point(m, x, y)

    def map_click(self, model_id, px: float, py: float) -> tuple[float, float]:
        """A click on the latent map image at pixel (px, py) → the plane point (x, y) under it, rounded."""
        m = self.entry(model_id).require_map()
        return m.rounded(*m.map_pixel_to_plane(px, py))

    def manifold_click(self, model_id, px: float, py: float, n) -> tuple[float, float]:
        """A click on the n×n manifold image at pixel (px, py) → the plane point of that grid cell."""
        entry = self.entry(model_id)
        n = check_int(n, "Grid size", *MANIFOLD_RANGE)
        side = n * entry.model.config.sample_size
        m = entry.require_map()
        return m.rounded(*m.manifold_pixel_to_plane(px, py, side * display_scale(side, MANIFOLD_WIDTH), n))

    def status(self, model_id) -> str:
        """Markdown above every view: a line describing the loaded model (loading it, so errors show here first),
        then the credits its training data asks for, so every view showing its images carries them."""
        entry = self.entry(model_id)
        credits = entry.data_credits
        return describe(entry) + (f"  \n**Training data:** {credits}" if credits else "")

    def problem(self, model_id) -> str:
        """The status line after a model could not be chosen: what is wrong, in words, instead of the previous
        model's description (refusals are immediate, failed loads remembered: this does not load again)."""
        try:
            return self.status(model_id)
        except InputError as err:
            return f"⚠️ {err}"

    def about(self, model_id) -> str:
        """/about → markdown: the model, its numbers, how it was trained, its card, the data."""
        entry = self.entry(model_id)
        if entry.kind == "pipeline":
            return pipeline_about_markdown(entry, self.files)
        if entry.kind == "text-to-image":
            return text_to_image_about_markdown(entry, self.files)
        return about_markdown(entry, self.files)

    def kind(self, model_id) -> str:
        """The kind of the model (``KINDS``), loading it."""
        return self.entry(model_id).kind

    def tabs(self, model_id) -> tuple[str, ...]:
        """The tabs (``TABS``) of the model's kind, loading it."""
        return TABS[self.kind(model_id)]

    def has_tab(self, model_id, tab: str) -> bool:
        """Whether the model does the job of ``tab`` (one of ``TABS``' names)."""
        return tab in self.tabs(model_id)

    def known_kind(self, model_id: str | None) -> str | None:
        """The kind (``KINDS``) of an offered model that is a folder on this machine, known without loading it;
        None for a Hub id (or no model)."""
        folder = self.loader.source(model_id).folder if model_id else None
        return folder_kind(folder) if folder else None

    def offered(self, kind: str) -> list[str]:
        """The offered models of ``kind`` (``KINDS``) that are folders on this machine (known without loading)."""
        return [i for i in self.model_ids if self.known_kind(i) == kind]

    def compare_partner(self, vae_id: str) -> str | None:
        """The offered diffusion pipeline (class-conditional or text-to-image) trained on the vector VAE's data, by
        their folders' records (without loading either): Compare's partner for it; None if none."""

        def data(model_id: str) -> str | None:
            folder = self.loader.source(model_id).folder
            return recorded_data_name(folder) if folder else None

        own = data(vae_id)
        drawers = self.offered("pipeline") + self.offered("text-to-image")
        return next((i for i in drawers if own and (other := data(i)) and same_data(own, other)), None)

    def known_class_names(self, model_id: str) -> list[str]:
        """The class names of an offered pipeline folder, from its ``model_index.json`` (without loading it)."""
        folder = self.loader.source(model_id).folder
        id2label = _read_json(folder / PIPELINE_INDEX_NAME).get("id2label") if folder else None
        return (
            [str(v) for _, v in sorted(id2label.items(), key=lambda kv: int(kv[0]))]
            if isinstance(id2label, dict)
            else []
        )

    def class_choices(self, model_id) -> dict:
        """The settings of /diffuse's class box for this model: "any" and its class names (only "any" for a model
        that is not a pipeline, or an unconditional one)."""
        entry = self.entry(model_id)
        names = entry.model.class_names if entry.kind == "pipeline" else []
        return {"choices": [ANY_CLASS, *names], "value": ANY_CLASS, "interactive": bool(names)}

    def diffuse(
        self,
        model_id,
        label=ANY_CLASS,
        num_images=16,
        steps=DEFAULT_NUM_INFERENCE_STEPS,
        guidance=DEFAULT_GUIDANCE_SCALE,
        seed=0,
        scheduler="DPM-Solver++",
    ) -> Iterator[tuple[PIL.Image.Image, PIL.Image.Image | None, str | None]]:
        """/diffuse, streamed: yields (preview, None, None) with the decoded x0 prediction every few steps, then
        (final grid, final grid, path of the GIF of the denoising). Same inputs, same images."""
        pipe = self.entry(model_id).require_pipeline("diffusion sampling")
        n = check_int(num_images, "Number of images", *DIFFUSE_IMAGES)
        steps = check_int(steps, "Steps", *DIFFUSE_STEPS)
        guidance = check_float(guidance, "Guidance scale", 0.0, MAX_GUIDANCE)
        seed = check_int(seed, "Seed", 0, MAX_SEED)
        check_choice(scheduler, "Scheduler", tuple(SCHEDULERS))
        labels = class_labels(pipe, label, n, seed)
        yield from self.streamed_grids(denoise(pipe, labels, n, steps, guidance, seed, scheduler), steps)

    def streamed_grids(self, stream: Iterator[tuple[int, torch.Tensor]], steps: int) -> Iterator[tuple]:
        """(step, images) of a watched sampling → (preview grid, None, None) until the last step, then (grid, grid,
        path of the GIF of all the grids)."""
        frames = []
        for step, images in stream:
            grid = show(images)
            frames.append(show(images, width=GIF_WIDTH))
            if step < steps:
                yield grid, None, None
        gif = self.files.animation(frames, [200] * (len(frames) - 1) + [1500])  # the result stays a while
        yield grid, grid, gif

    def measured_records(self) -> str:
        """Markdown for Compare: the sample quality that each offered model on this machine recorded, one table per
        way of measuring and data (``records.records_markdown``), read from its folder without loading it."""
        from ..text_to_image_evaluation import read_recommended

        folders = [(i, f) for i in self.model_ids if (f := self.loader.source(i).folder) is not None]
        recommended = {
            i: (s.scheduler, s.num_inference_steps, s.guidance_scale)
            for i, f in folders
            if (s := read_recommended(str(f)))
        }
        return records_markdown(folders, recommended)

    def compare(
        self, vae_id, pipeline_id, num_images=16, seed=0, prompt=""
    ) -> tuple[list[tuple[PIL.Image.Image, str]], str]:
        """/compare → ([(grid, caption)], markdown table): ``num_images`` samples of the vector VAE's N(0, I) prior,
        of its mixture prior (if it has one) and of the pipeline, each captioned with its sample quality as measured
        by ``evaluate_samples`` (read from the models' metrics, not computed here). A class-conditional pipeline
        draws random classes at its default steps and guidance with its own scheduler, and its numbers are a
        classifier's; a text-to-image pipeline draws ``prompt`` (blank: its validation prompts in turn) at its
        recommended setting, and its numbers are a mini CLIP's, so the VAE's are those measured with the same CLIP
        (``evaluate_samples --clip``). The table gives the models, settings and sample counts behind the numbers,
        after a line that says so when the two models were trained on different data."""
        vae_entry, pipe_entry = self.entry(vae_id), self.entry(pipeline_id)
        vae = vae_entry.require_vector("prior samples to compare")
        text_to_image = pipe_entry.kind == "text-to-image"
        if not text_to_image:
            pipe_entry.require_pipeline("diffusion samples to compare")
        n = check_int(num_images, "Number of images", *DIFFUSE_IMAGES)
        seed = check_int(seed, "Seed", 0, MAX_SEED)
        if text_to_image:
            name, (images, settings, record) = "text to image", self._text_to_image_column(pipe_entry, n, seed, prompt)
            score, note, way = "r_precision", TEXT_TO_IMAGE_NOTE, "clip"
        else:
            name, (images, settings, record) = "diffusion", self._diffusion_column(pipe_entry, n, seed)
            score, note, way = "class_match", COMPARE_NOTE, "classifier"
        judge = measured_by(record) if record else None
        network = judge[1] if judge else None  # the VAE's numbers: those measured by the same network
        columns, rows = [], []
        for prior, what in (("standard", "N(0, I) prior"), ("mixture", "mixture prior")):
            if prior == "standard" or vae.config.prior_components:
                prior_record = comparable_record(vae_entry, way, network, kind="vae", prior=prior)
                columns.append((sample_images(vae, n, seed, prior=prior), quality_caption(what, prior_record)))
                rows.append((what, vae_entry.model_id, "temperature 1", prior_record))
        columns.append((show(images), quality_caption(name, record)))
        rows.append((name, pipe_entry.model_id, settings, record))
        table = quality_table(rows, score, note)
        credits = dict.fromkeys(c for e in (vae_entry, pipe_entry) if (c := e.data_credits))  # shown images' data
        if credits:
            table += "\n\n**Training data credits:** " + "; ".join(credits)
        different = different_data_note(vae_entry, pipe_entry)
        return columns, f"{different}\n\n{table}" if different else table

    def _diffusion_column(self, entry: ModelEntry, n: int, seed: int) -> tuple[torch.Tensor, str, dict | None]:
        """Compare's class-conditional column: images (n, C, H, W) of random classes, its settings, its record."""
        pipe = entry.model
        steps, guidance = pipeline_defaults(pipe)  # with its own scheduler: as evaluate_samples measures it
        *_, (_, images) = denoise(
            pipe, class_labels(pipe, ANY_CLASS, n, seed), n, steps, guidance, seed, None, previews=0
        )
        record = quality_record(entry, kind="pipeline", num_inference_steps=steps, guidance_scale=guidance)
        settings = f"{steps} steps, guidance {guidance:g}, {type(pipe.scheduler).__name__}, random classes"
        return images, settings, record

    def _text_to_image_column(
        self, entry: ModelEntry, n: int, seed: int, prompt
    ) -> tuple[torch.Tensor, str, dict | None]:
        """Compare's text-to-image column: images (n, 3, H, W) of ``prompt`` (blank: the model's validation prompts
        in turn) at its recommended setting, the settings in words, and its record at that setting."""
        prompt = check_prompt(prompt, allow_empty=True)
        prompts = [prompt] if prompt else entry.validation_prompts
        if not prompts:
            raise InputError(f"{entry.model_id} records no validation prompts to draw: type a prompt.")
        setting = recommended_setting(entry)
        sampling = check_sampling(setting.num_inference_steps, setting.guidance_scale, seed, setting.scheduler)
        images = draw(entry.model, [prompts[i % len(prompts)] for i in range(n)], sampling)
        record = quality_record(entry, kind=TEXT_TO_IMAGE_RECORD, **asdict(setting))
        drawn = f'"{prompt}"' if prompt else f"its {len(prompts)} validation prompts in turn"
        settings = f"{setting.scheduler}, {sampling.steps} steps, guidance {sampling.guidance:g}, {drawn}"
        return images, settings, record


def describe(entry: ModelEntry) -> str:
    """One markdown line describing a loaded model: kind, images, latents, and the views that apply."""
    data = f" of `{entry.dataset}`" if entry.dataset else ""
    if entry.kind == "text-to-image":
        pipe = entry.model
        size = pipe.unet.config.sample_size * pipe.vae_scale_factor
        return (
            f"**{entry.model_id}** · text-to-image pipeline (StableDiffusionPipeline) · RGB {size}×{size} "
            f"images{data} · {len(pipe.tokenizer):,}-token vocabulary · samples with "
            f"{recommended_setting(entry).describe()} · Text to image, Image to image, Inpaint, Prompt walk, "
            "Compare (beside a vector VAE of its data) and About"
        )
    if entry.kind == "pipeline":
        pipe = entry.model
        vae, unet = pipe.vae.config, pipe.unet.config
        latents = f"{unet.in_channels}×{unet.sample_size}×{unet.sample_size}"
        classes = f"{pipe.num_classes} classes" if pipe.num_classes else "unconditional"
        return (
            f"**{entry.model_id}** · latent diffusion pipeline · {classes} · "
            f"{vae.in_channels}×{vae.sample_size}×{vae.sample_size} images{data} from {latents} latents · "
            "Diffuse, Compare and About only"
        )
    cfg = entry.model.config
    images = f"**{entry.model_id}** · {cfg.in_channels}×{cfg.sample_size}×{cfg.sample_size} images{data}"
    if entry.spatial:
        cls = "AutoencoderKL" if isinstance(entry.model, AutoencoderKLWithLikelihood) else "spatial autoencoder"
        return (
            f"{images} · {cls}, latents {'×'.join(map(str, entry.model.latent_shape))} · "
            f"{cfg.likelihood} likelihood · Reconstruct, Interpolate and About only"
        )
    mixture = f"mixture prior ({cfg.prior_components} components)" if cfg.prior_components else "no mixture prior"
    return (
        f"{images} · {cfg.latent_dim}-D latent · {cfg.likelihood} likelihood · {mixture} · "
        "Diffuse needs a diffusion pipeline"
    )
