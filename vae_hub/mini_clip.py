"""A mini CLIP: transformers' own ``CLIPModel``, small, for a caption tokenizer learned from the data
(``vae_hub.text_tokenizer``). ``training/train_clip.py`` trains one; ``vae_hub.text_image_metrics`` measures with it;
``training/train_text_to_image.py --pretrained_text_encoder_model_name_or_path`` takes its text tower.

Its folder (``save_mini_clip``), read by transformers alone::

    config.json, model.safetensors   CLIPModel.from_pretrained(folder); also CLIPTextModel.from_pretrained(folder)
                                     (the text tower alone: what a Stable Diffusion text encoder is) and
                                     CLIPVisionModel.from_pretrained(folder)
    preprocessor_config.json         CLIPImageProcessor.from_pretrained(folder): RGB, shorter side resized to
                                     vision_config.image_size and centre-cropped, then pixel / 127.5 − 1 (mean = std
                                     = 0.5): the project's [-1, 1] convention (``vae_hub.images.uint8_to_float``)
    tokenizer/                       CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")

Inside the project images take the one path of ``vae_hub.data`` (decoded once to uint8 at the model's size), so
``pixel_values`` is ``uint8_to_float`` with a size check; the image processor file is for everyone else.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from .images import uint8_to_float
from .text_tokenizer import save_caption_tokenizer


TOKENIZER_FOLDER = "tokenizer"


def clip_text_config(tokenizer: CLIPTokenizer, hidden_size: int, num_layers: int, num_heads: int) -> CLIPTextConfig:
    """A small text tower for ``tokenizer``: its vocabulary and special tokens, ``model_max_length`` positions.

    ``eos_token_id`` matters: the pooled output (and so the projected text feature) is the state at the first eos.
    """
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        projection_dim=hidden_size,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def mini_clip_config(
    tokenizer: CLIPTokenizer,
    *,
    text_hidden_size: int,
    text_layers: int,
    text_heads: int,
    vision_hidden_size: int,
    vision_layers: int,
    vision_heads: int,
    image_size: int,
    patch_size: int,
    projection_dim: int,
) -> CLIPConfig:
    """A ``CLIPConfig``: ``clip_text_config`` and a ViT over ``image_size``² RGB images in ``patch_size``² patches,
    both projected to ``projection_dim``."""
    text = clip_text_config(tokenizer, text_hidden_size, text_layers, text_heads).to_dict()
    vision = {
        "hidden_size": vision_hidden_size,
        "intermediate_size": 4 * vision_hidden_size,
        "num_hidden_layers": vision_layers,
        "num_attention_heads": vision_heads,
        "image_size": image_size,
        "patch_size": patch_size,
        "num_channels": 3,
        "projection_dim": projection_dim,
    }
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)


def clip_image_processor(image_size: int) -> CLIPImageProcessor:
    """What ``pixel_values`` does, as transformers' ``CLIPImageProcessor`` (for readers outside the project)."""
    return CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
        do_convert_rgb=True,
    )


def pixel_values(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """uint8 RGB images (N, 3, image_size, image_size) → the vision tower's input, float in [-1, 1].

    Raises:
        ValueError: images of another shape (decode them at the model's size: ``vae_hub.data.decode_images``).
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != (3, image_size, image_size):
        raise ValueError(
            f"the mini CLIP takes uint8 RGB images (N, 3, {image_size}, {image_size}), got "
            f"{images.dtype} {tuple(images.shape)}"
        )
    return uint8_to_float(images)


@dataclass
class MiniClip:
    """A ``CLIPModel`` and its caption tokenizer, as one folder holds them."""

    model: CLIPModel
    tokenizer: CLIPTokenizer

    @property
    def image_size(self) -> int:
        return self.model.config.vision_config.image_size

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "MiniClip":
        """Load a ``save_mini_clip`` folder (eval mode).

        Raises:
            ValueError: not a CLIPModel folder with a tokenizer, in one line.
        """
        try:
            model = CLIPModel.from_pretrained(folder)
            tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder=TOKENIZER_FOLDER)
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise ValueError(
                f"{str(folder)!r} is not a mini CLIP folder (CLIPModel + {TOKENIZER_FOLDER}/): "
                f"{' '.join(str(err).split())[:300]}"
            ) from err
        return cls(model.eval(), tokenizer)


def save_mini_clip(model: CLIPModel, tokenizer: CLIPTokenizer, folder: str | Path) -> None:
    """Write the folder described above: the model, its image processor settings, the tokenizer in ``tokenizer/``."""
    folder = Path(folder)
    model.save_pretrained(folder)
    clip_image_processor(model.config.vision_config.image_size).save_pretrained(folder)
    save_caption_tokenizer(tokenizer, folder / TOKENIZER_FOLDER)


def load_text_encoder(folder: str | Path) -> tuple[CLIPTextModel, CLIPTokenizer]:
    """The text tower of a mini CLIP folder (or a ``CLIPTextModel`` folder with a ``tokenizer/``) and its tokenizer.

    The vision tower's and the projections' weights are left out on purpose, so transformers' report of them as
    "unexpected" is silenced here.

    Raises:
        ValueError: the folder holds no CLIP text model or no tokenizer, in one line.
    """
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        text_encoder = CLIPTextModel.from_pretrained(folder)
        tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder=TOKENIZER_FOLDER)
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise ValueError(
            f"{str(folder)!r} holds no CLIP text model with a {TOKENIZER_FOLDER}/ folder: "
            f"{' '.join(str(err).split())[:300]}"
        ) from err
    finally:
        transformers.logging.set_verbosity(verbosity)
    if text_encoder.config.vocab_size < len(tokenizer):
        raise ValueError(
            f"the text model in {str(folder)!r} has {text_encoder.config.vocab_size} token embeddings, "
            f"its tokenizer {len(tokenizer)} tokens"
        )
    return text_encoder, tokenizer
