"""Weights saved before the models were built from ``encoder`` and ``decoder`` parts (issue 27) still load, once
converted, by ``from_pretrained`` and by ``load_state_dict`` (an accelerate checkpoint of a run in progress); the
shipped checkpoints carry the new names."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, load_model, safe_open, save_file
from tiny import tiny_spatial_vae, tiny_vae

from vae_hub.models import SpatialVAEModel, VAEModel
from vae_hub.models.blocks import rename_legacy_keys


SHIPPED = Path(__file__).resolve().parent.parent / "space" / "models"
WEIGHTS = "diffusion_pytorch_model.safetensors"
CLASSES = {"VAEModel": VAEModel, "SpatialVAEModel": SpatialVAEModel}


def tiny(cls):
    return tiny_vae(sample_size=12, likelihood="gaussian") if cls is VAEModel else tiny_spatial_vae()


def old_names(cls, state: dict) -> dict:
    """``state`` under the names the class had before (the inverse of its conversion)."""
    return rename_legacy_keys(dict(state), {new: old for old, new in cls._legacy_key_renames.items()})


@pytest.mark.parametrize("cls", [VAEModel, SpatialVAEModel])
def test_the_renames_cover_every_weight_that_moved(cls):
    state = tiny(cls).state_dict()
    old = old_names(cls, state)
    assert not any(k.startswith(("encoder.", "decoder.")) for k in old)  # every part's weight had an old name
    assert rename_legacy_keys(dict(old), cls._legacy_key_renames).keys() == state.keys()
    assert cls.legacy_keys_in(old) and not cls.legacy_keys_in(state)


@pytest.mark.parametrize("cls", [VAEModel, SpatialVAEModel])
def test_a_folder_saved_under_the_old_names_loads_bit_exact(cls, tmp_path):
    model = tiny(cls).eval()
    model.save_pretrained(tmp_path)
    save_file(old_names(cls, model.state_dict()), tmp_path / WEIGHTS, metadata={"format": "pt"})
    loaded = cls.from_pretrained(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    x = torch.rand(2, 1, 12, 12) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x).sample, loaded(x).sample)
    loaded.save_pretrained(tmp_path / "again")  # saving writes the new names
    assert load_file(tmp_path / "again" / WEIGHTS).keys() == model.state_dict().keys()


@pytest.mark.parametrize("cls", [VAEModel, SpatialVAEModel])
def test_a_checkpoint_of_a_run_in_progress_resumes(cls, tmp_path):
    """accelerate's load_state reads model.safetensors with safetensors' strict load_model, i.e. load_state_dict."""
    model, fresh = tiny(cls), cls.from_config(tiny(cls).config)
    torch.nn.init.zeros_(next(fresh.parameters()))
    save_file(old_names(cls, model.state_dict()), tmp_path / "model.safetensors")
    load_model(fresh, tmp_path / "model.safetensors", strict=True)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))
    wrapped = torch.nn.Sequential(fresh)  # under a prefix, as inside a wrapper module
    wrapped.load_state_dict({f"0.{k}": v for k, v in old_names(cls, model.state_dict()).items()})


def test_a_sharded_checkpoint_under_the_old_names_is_refused_with_the_reason(tmp_path):
    model = tiny(SpatialVAEModel)
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    index = json.loads((tmp_path / "diffusion_pytorch_model.safetensors.index.json").read_text())
    for shard in set(index["weight_map"].values()):
        save_file(old_names(SpatialVAEModel, load_file(tmp_path / shard)), tmp_path / shard, metadata={"format": "pt"})
    index["weight_map"] = old_names(SpatialVAEModel, index["weight_map"])
    (tmp_path / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="older vae-hub.*sharded ones not"):
        SpatialVAEModel.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "folder", ["fashion-mnist-vae", "fashion-mnist-vae-2d", "fashion-mnist-spatial-vae", "fashion-mnist-ldm/vae"]
)
def test_the_shipped_checkpoints_carry_the_new_names(folder):
    cls = CLASSES[json.loads((SHIPPED / folder / "config.json").read_text())["_class_name"]]
    with safe_open(SHIPPED / folder / WEIGHTS, "pt") as f:
        keys = list(f.keys())
    assert keys and not cls.legacy_keys_in(keys)
