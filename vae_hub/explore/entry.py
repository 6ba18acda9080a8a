"""``ModelEntry``: a loaded model and what the Space derives from its files, computed once."""

import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline
from huggingface_hub import ModelCard

from ..data import data_credits
from ..evaluate_samples import RECORD_KEY as SAMPLE_QUALITY_KEY
from ..images import float_to_uint8
from ..latent import dimensions_by_kl
from ..loading import MAP_SAMPLE_NAME
from ..models import SpatialVAEModel, VAEModel
from ..pipelines import LatentDiffusionPipeline
from ..space_models import InputError, Loaded
from .checks import ACTIVE_KL_NATS, DIFFUSE_IMAGES, TRAVERSE_SLIDERS
from .kinds import KIND_NAMES, MAP_MODELS, TABS, _read_json, recorded_data_name
from .latent_map import LatentMap, MapSample, build_latent_map
from .text_to_image import MAX_PROMPT_CHARS


MAX_VALIDATION_PROMPTS = DIFFUSE_IMAGES[1]  # Compare draws at most this many images: more would never be used
MAX_CREDIT_CHARS = 500  # the emoji data's credit is about 160


@dataclass
class ModelEntry:
    """A loaded model and what the Space derives from it (computed once, on first use), all from the model's own
    files: its latent-map sample (``MAP_SAMPLE_NAME``), its card's dataset, its size and channels."""

    model_id: str
    loaded: Loaded  # the model, its files on this machine, where it came from
    _cache: dict = field(default_factory=dict, repr=False)
    # re-entrant: the manifold needs the map
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def model(self) -> VAEModel | SpatialVAEModel | LatentDiffusionPipeline:
        return self.loaded.model

    @property
    def kind(self) -> str:
        """ "vector", "spatial", "pipeline" or "text-to-image" (``KINDS``): which tabs the model has (``TABS``)."""
        if isinstance(self.model, LatentDiffusionPipeline):
            return "pipeline"
        if isinstance(self.model, StableDiffusionPipeline):
            return "text-to-image"
        return "spatial" if isinstance(self.model, MAP_MODELS) else "vector"

    @property
    def spatial(self) -> bool:
        return self.kind == "spatial"

    def cannot(self, view: str, instead: str) -> InputError:
        """The answer to a tab asked of a model that cannot do it: what the model is, why it has no ``view``, its own
        tabs, and (``instead``) the kind of model to choose."""
        why = {
            "vector": "it has a code and a prior, not a denoiser",
            "spatial": f"its latents are a {'×'.join(map(str, getattr(self.model, 'latent_shape', ())))} map "
            "with no prior to sample from",
            "pipeline": "it draws images of its classes from noise, step by step, and has no code of its own to "
            "encode into or move through",
            "text-to-image": "it draws images from a text prompt, step by step, and has no code of its own to "
            "move through",
        }[self.kind]
        *others, last = [t for t in TABS[self.kind] if t != "About"]
        tabs = f"{', '.join(others)} or {last}" if others else last
        return InputError(
            f"{self.model_id} is {KIND_NAMES[self.kind]}: {why}, so it has no {view}. Try {tabs}, or choose {instead}."
        )

    def require_vector(self, view: str) -> VAEModel:
        """The model, if it has a vector code and a prior (what ``view`` needs); else an ``InputError`` in words."""
        if self.kind != "vector":
            raise self.cannot(view, "a vector VAE")
        return self.model

    def require_autoencoder(self, view: str) -> VAEModel | SpatialVAEModel:
        """The model, if it encodes and decodes images (a vector VAE or a spatial autoencoder)."""
        if self.kind in ("pipeline", "text-to-image"):
            raise self.cannot(view, "a VAE")
        return self.model

    def require_pipeline(self, view: str) -> LatentDiffusionPipeline:
        """The model, if it is a latent diffusion pipeline (what ``view`` needs); else an ``InputError`` in words."""
        if self.kind != "pipeline":
            raise self.cannot(view, "a diffusion pipeline")
        return self.model

    def require_text_to_image(self, view: str) -> StableDiffusionPipeline:
        """The model, if it is a text-to-image pipeline; else an ``InputError`` in words."""
        if self.kind != "text-to-image":
            raise self.cannot(view, "a text-to-image pipeline")
        return self.model

    def _once(self, name: str, compute):
        with self._lock:  # concurrent first requests wait for one computation instead of repeating it
            if name not in self._cache:
                self._cache[name] = compute()
            return self._cache[name]

    @property
    def sample_quality(self) -> list[dict]:
        """The records of ``metrics.json`` "sample_quality" that hold a Fréchet distance (read once, not per
        request)."""

        def compute() -> list[dict]:
            metrics = _model_file(self, "metrics.json")
            records = (_read_json(metrics) if metrics else {}).get(SAMPLE_QUALITY_KEY)
            return [
                r
                for r in (records.values() if isinstance(records, dict) else ())
                if isinstance(r, dict) and isinstance(r.get("frechet_distance"), (int, float))
            ]

        return self._once("sample_quality", compute)

    @property
    def sample(self) -> MapSample | None:
        """The model's own latent-map sample, or None (``sample_problem`` says why)."""
        return self._map_sample[0]

    @property
    def sample_problem(self) -> str:
        """Why the model has no latent map, in words for the person using the Space ("" when it has one)."""
        return self._map_sample[1]

    @property
    def _map_sample(self) -> tuple[MapSample | None, str]:
        def compute() -> tuple[MapSample | None, str]:
            path = _model_file(self, MAP_SAMPLE_NAME)
            if path is None:
                return None, (
                    f"this model ships no sample of its held-out images ({MAP_SAMPLE_NAME}, written by "
                    "training/train_vae.py), so it has no latent map"
                )
            try:
                return MapSample.load(path), ""
            except ValueError as err:
                return None, f"this model's {MAP_SAMPLE_NAME} cannot be used: {err}"

        return self._once("sample", compute)

    @property
    def dataset(self) -> str | None:
        """The training data the model's own files name: its card's ``datasets`` (a Hub id), else the record of
        ``training_info.json`` or ``metrics.json`` (a local folder by its name only: no paths of another machine)."""

        def compute() -> str | None:
            card = _model_file(self, "README.md")
            try:
                datasets = ModelCard.load(card).data.datasets if card else None
            except Exception:  # a card without metadata, or none at all: the records below may still say
                datasets = None
            if datasets:
                return str(datasets[0] if isinstance(datasets, list) else datasets)[:200]
            return recorded_data_name(self.loaded.folder)

        return self._once("dataset", compute)

    @property
    def validation_prompts(self) -> list[str]:
        """A text-to-image model's validation prompts as its ``training_info.json`` records them (its card's grid),
        at most ``MAX_VALIDATION_PROMPTS``, each cut to ``MAX_PROMPT_CHARS``; [] when it records none."""

        def compute() -> list[str]:
            path = _model_file(self, "training_info.json")
            prompts = _read_json(path).get("validation_prompts") if path else None
            if not isinstance(prompts, list):
                return []
            kept = [" ".join(p.split())[:MAX_PROMPT_CHARS] for p in prompts if isinstance(p, str)]
            return [p for p in kept if p][:MAX_VALIDATION_PROMPTS]

        return self._once("validation_prompts", compute)

    @property
    def data_credits(self) -> str | None:
        """The training data's credits from ``training_info.json`` (``--dataset_credit``, the dataset's licence), cut to
        ``MAX_CREDIT_CHARS``: a model from the Hub writes what it likes there, and every view shows it."""

        def compute() -> str | None:
            info = _model_file(self, "training_info.json")
            credits = data_credits(_read_json(info)) if info else None
            return credits[:MAX_CREDIT_CHARS] + "…" if credits and len(credits) > MAX_CREDIT_CHARS else credits

        return self._once("credits", compute)

    @property
    def kl(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(order (D,), kl (D,)): dimensions by decreasing KL in nats, on the model's map sample, or (without
        one) on 256 of its own prior samples."""

        def compute():
            if self.sample is not None:
                images = self.sample.for_model(self.model)
            else:
                with torch.inference_mode():
                    images = float_to_uint8(self.model.generate(256, generator=torch.Generator().manual_seed(0)))
            return dimensions_by_kl(self.model, images)

        return self._once("kl", compute)

    @property
    def slider_dims(self) -> list[tuple[int, float]]:
        """(dimension, KL) for the traversal sliders: the most active dimensions, at least one."""
        order, kl = self.kl
        dims = [(int(j), float(kl[j])) for j in order[:TRAVERSE_SLIDERS]]
        return [dk for dk in dims if dk[1] > ACTIVE_KL_NATS] or dims[:1]

    @property
    def latent_map(self) -> LatentMap | None:
        """The map of the model's own sample; None when it has none."""
        return self._once("map", lambda: build_latent_map(self.model, self.sample) if self.sample else None)

    def require_map(self) -> LatentMap:
        self.require_vector("latent map")
        if self.latent_map is None:
            raise InputError(f"No latent map: {self.sample_problem}.")
        return self.latent_map

    @property
    def dark_background(self) -> bool:
        """Whether the model's images have a dark border (Fashion-MNIST: yes), judged from prior samples (a spatial
        model: from the decoded mean latent map, the shift)."""

        def compute() -> bool:
            with torch.inference_mode():
                if self.spatial:
                    shift = self.model.config.shift_factor or 0.0
                    x = self.model.decode(torch.full((1, *self.model.latent_shape), float(shift))).sample
                else:
                    x = self.model.generate(16, generator=torch.Generator().manual_seed(0))
            return bool(torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], -1).mean() < 0)

        return self._once("dark", compute)


def _model_file(entry: ModelEntry, name: str) -> Path | None:
    """A file of the model's folder (a Hub repo's About files are downloaded with it), or None."""
    path = entry.loaded.folder / name
    return path if path.is_file() else None
