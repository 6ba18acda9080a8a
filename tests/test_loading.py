"""save_pretrained / from_pretrained: exact round trips, safetensors only, strict refusals, repo ids from a HF cache."""

import hashlib
import json
import os
from pathlib import Path

import httpx2
import huggingface_hub
import pytest
import torch
from diffusers import AutoencoderKL
from safetensors.torch import load_file, save_file
from tiny import tiny_vae as tiny

from vae_hub.models import VAEModel


WEIGHTS = "diffusion_pytorch_model.safetensors"


def with_mixture(model: VAEModel) -> VAEModel:
    gen = torch.Generator().manual_seed(1)
    model.set_mixture_prior(
        torch.randn(3, 4, generator=gen), torch.randn(3, 4, generator=gen) - 2, torch.tensor([0.2, 0.3, 0.5]).log()
    )
    return model


def images(batch: int = 2, channels: int = 1, size: int = 28) -> torch.Tensor:
    return torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


def outputs(model: VAEModel) -> list[torch.Tensor]:
    """Everything a user sees: reconstruction, likelihood parameters, posterior, posterior samples, generations."""
    c, s = model.config.in_channels, model.config.sample_size
    x = images(channels=c, size=s).to(model.dtype)
    out = model(x, sample_posterior=True, generator=torch.Generator().manual_seed(2))
    result = [
        out.sample,
        out.decoder_params,
        out.latent_dist.parameters,
        out.latents,
        model.generate(3, torch.Generator().manual_seed(3)),
    ]
    if model.config.prior_components:
        result.append(model.generate(3, torch.Generator().manual_seed(3), prior="mixture"))
    return result


def assert_identical(a: VAEModel, b: VAEModel) -> None:
    config_a, config_b = (json.loads(m.to_json_string()) for m in (a, b))  # the config.json they would write
    config_b.pop("_name_or_path", None)  # where it was loaded from
    assert config_a == config_b
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    with torch.no_grad():
        for x, y in zip(outputs(a), outputs(b), strict=True):
            assert torch.equal(x, y)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "kwargs",
    [
        {"likelihood": "bernoulli"},
        {"likelihood": "gaussian", "in_channels": 3, "sample_size": 30, "learn_likelihood_scale": False},
        {"likelihood": "laplace", "scaling_factor": 0.37},
    ],
)
def test_save_load_is_bit_identical_and_writes_only_safetensors(tmp_path, kwargs):
    model = with_mixture(tiny(**kwargs))
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json", WEIGHTS]
    loaded = VAEModel.from_pretrained(tmp_path)
    assert loaded.config.prior_components == 3
    assert_identical(model, loaded)


@pytest.mark.parametrize("spatial", [False, True])
def test_weights_get_the_same_file_mode_as_the_config(tmp_path, spatial):
    from vae_hub.models.spatial_vae import SpatialVAEModel

    model = SpatialVAEModel(block_out_channels=(8, 16), norm_num_groups=4, latent_channels=2) if spatial else tiny()
    model.save_pretrained(tmp_path)  # safetensors writes through a private (0600) temporary file
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes[WEIGHTS] == modes["config.json"] == 0o666 & ~_umask()


def test_a_saved_fine_tune_names_no_folder_of_this_machine(tmp_path):
    """diffusers records where a model was loaded from (``_name_or_path``); saved again, an absolute path keeps
    only its last part, so a pushed fine-tune does not carry the training machine's folders."""
    tiny().save_pretrained(tmp_path / "home" / "me" / "runs" / "base")
    base = VAEModel.from_pretrained(tmp_path / "home" / "me" / "runs" / "base")
    assert str(base.config._name_or_path) == str(tmp_path / "home" / "me" / "runs" / "base")
    base.save_pretrained(tmp_path / "tuned")
    assert json.loads((tmp_path / "tuned" / "config.json").read_text())["_name_or_path"] == "base"
    relative = VAEModel.from_pretrained(os.path.relpath(tmp_path / "tuned"))
    relative.save_pretrained(tmp_path / "again")  # a relative path names no folder outside the project: kept
    assert json.loads((tmp_path / "again" / "config.json").read_text())["_name_or_path"] == os.path.relpath(
        tmp_path / "tuned"
    )


@pytest.mark.parametrize("field, value", [("layers_per_block", 10**6), ("block_out_channels", [8] * 10**6)])
def test_a_config_of_a_million_blocks_is_refused_before_building_them(tmp_path, field, value):
    """Sizing a config builds it on the meta device, one Python module per block: a hostile block count would take
    minutes and GBs there, so the config checks refuse it first, naming the field."""
    tiny().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, field: value}))
    with pytest.raises(ValueError, match=f"`{field}` must be"):
        VAEModel.from_pretrained(tmp_path)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_round_trip_without_a_mixture_prior(tmp_path):
    model = tiny()
    model.save_pretrained(tmp_path)
    loaded = VAEModel.from_pretrained(tmp_path)
    assert loaded.config.prior_components == 0 and not hasattr(loaded, "prior_means")
    assert_identical(model, loaded)


def test_subfolder_and_loading_info(tmp_path):
    model = tiny()
    model.save_pretrained(tmp_path / "vae")
    loaded, info = VAEModel.from_pretrained(tmp_path, subfolder="vae", output_loading_info=True)
    assert not any(info.values())  # nothing missing, unexpected or mismatched
    assert_identical(model, loaded)


def test_subfolder_wins_over_weights_at_the_root(tmp_path):
    """diffusers alone would take the root's weights with the subfolder's config: a silent mix of two models."""
    root = tiny()
    torch.manual_seed(1)
    sub = VAEModel(block_out_channels=(8, 16), norm_num_groups=4, latent_dim=4)  # same shapes, other weights
    root.save_pretrained(tmp_path)
    sub.save_pretrained(tmp_path / "vae")
    assert_identical(sub, VAEModel.from_pretrained(tmp_path, subfolder="vae"))
    assert_identical(root, VAEModel.from_pretrained(tmp_path))


def test_torch_dtype_float64(tmp_path):
    model = with_mixture(tiny(likelihood="gaussian"))
    model.save_pretrained(tmp_path)
    loaded = VAEModel.from_pretrained(tmp_path, torch_dtype=torch.float64)
    tensors = list(loaded.parameters()) + list(loaded.buffers())
    assert loaded.dtype == torch.float64 and all(t.dtype == torch.float64 for t in tensors)
    torch.testing.assert_close(loaded.prior_means, model.prior_means.double(), rtol=0, atol=0)
    with torch.no_grad():
        recon = loaded(images().double()).sample
        assert recon.dtype == torch.float64
        torch.testing.assert_close(recon.float(), model(images()).sample, rtol=0, atol=1e-5)
        generated = loaded.generate(2, torch.Generator().manual_seed(0), prior="mixture")
        assert generated.dtype == torch.float64


# ---------------------------------------------------------------- refusals


def test_pickle_only_folder_is_refused(tmp_path):
    model = tiny()
    model.save_pretrained(tmp_path, safe_serialization=False)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "diffusion_pytorch_model.bin"]  # a real pickle
    with pytest.raises(OSError, match=r"pickle checkpoint \(diffusion_pytorch_model\.bin\)"):
        VAEModel.from_pretrained(tmp_path)
    # an explicit opt-in for a trusted source still works, and strictly
    assert_identical(model, VAEModel.from_pretrained(tmp_path, use_safetensors=False))


def test_autoencoder_kl_folder_is_refused(tmp_path):
    kl_vae = AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=2, sample_size=8)
    kl_vae.save_pretrained(tmp_path)
    assert (tmp_path / WEIGHTS).exists()
    with pytest.raises(ValueError, match="holds a AutoencoderKL, not a VAEModel"):
        VAEModel.from_pretrained(tmp_path)


def test_folder_without_config_is_refused(tmp_path):
    tiny().save_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(OSError, match="cannot read its config.json"):
        VAEModel.from_pretrained(tmp_path)
    with pytest.raises(OSError, match="cannot read its config.json"):
        VAEModel.from_pretrained(tmp_path / "does-not-exist")


def test_folder_without_weights_is_refused(tmp_path):
    tiny().save_pretrained(tmp_path)
    (tmp_path / WEIGHTS).unlink()
    with pytest.raises(OSError, match=f"^Error no file named {WEIGHTS} found in directory"):
        VAEModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("change", ["missing", "unexpected"])
def test_weights_with_missing_or_extra_keys_are_refused(tmp_path, change):
    tiny().save_pretrained(tmp_path)
    state = load_file(tmp_path / WEIGHTS)
    if change == "missing":
        del state["decoder.conv_out.bias"]
    else:
        state["decoder.conv_out.extra"] = torch.zeros(1)
    save_file(state, tmp_path / WEIGHTS)
    with pytest.raises(ValueError, match=rf"{change}_keys.*conv_out\.(bias|extra)"):
        VAEModel.from_pretrained(tmp_path)


def test_weights_with_a_wrong_shape_are_refused(tmp_path):
    tiny().save_pretrained(tmp_path)
    state = load_file(tmp_path / WEIGHTS)
    state["encoder.conv_in.weight"] = torch.zeros(8, 1, 5, 5)
    save_file(state, tmp_path / WEIGHTS)
    with pytest.raises(ValueError, match="encoder.conv_in.weight"):
        VAEModel.from_pretrained(tmp_path)
    # diffusers' escape hatch would re-initialise the weight at random: still refused
    with pytest.raises(ValueError, match="mismatched_keys.*conv_in.weight"):
        VAEModel.from_pretrained(tmp_path, low_cpu_mem_usage=False, ignore_mismatched_sizes=True)


def test_a_mixture_prior_missing_from_the_weights_is_refused(tmp_path):
    """Config says K = 3 but the buffers are gone: sampling from zeros would be silently wrong."""
    with_mixture(tiny()).save_pretrained(tmp_path)
    state = {k: v for k, v in load_file(tmp_path / WEIGHTS).items() if not k.startswith("prior_")}
    save_file(state, tmp_path / WEIGHTS)
    with pytest.raises(ValueError, match="missing_keys.*prior_"):
        VAEModel.from_pretrained(tmp_path)


# ---------------------------------------------------------------- repo ids from the Hugging Face cache, offline


def add_to_hf_cache(cache: Path, repo_id: str, commit: str, folder: Path, prefix: str = "", ref: str | None = "main"):
    """Lay out ``folder``'s files as huggingface_hub's cache does after a download of ``repo_id`` at ``commit``:
    content in ``blobs/<hash>``, ``snapshots/<commit>/<path>`` symlinks to the blobs, ``refs/<ref>`` → commit."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    for file in folder.iterdir():
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / prefix / file.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if ref:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)


class NetworkUsed(Exception):
    """Raised by the patched HTTP transport (not a network error, so nothing retries it or falls back quietly)."""


@pytest.fixture
def network_calls(monkeypatch):
    """Every request that reaches the HTTP transport is recorded and refused."""
    calls = []

    def no_network(self, request):
        calls.append(str(request.url))
        raise NetworkUsed(request.url)

    monkeypatch.setattr(httpx2.HTTPTransport, "handle_request", no_network)
    return calls


@pytest.fixture
def hf_cache(tmp_path, monkeypatch, network_calls):
    """An HF cache holding org/name (main: model A at the root and in vae/; tag v1: model B) in offline mode."""
    cache = tmp_path / "hub-cache"
    models = {}
    for name, seed in (("a", 0), ("b", 1)):
        torch.manual_seed(seed)
        models[name] = VAEModel(block_out_channels=(8, 16), norm_num_groups=4, latent_dim=4)
        models[name].save_pretrained(tmp_path / name)
    commit_a, commit_b = "a" * 40, "b" * 40
    add_to_hf_cache(cache, "org/name", commit_a, tmp_path / "a")
    add_to_hf_cache(cache, "org/name", commit_a, tmp_path / "a", prefix="vae", ref=None)
    add_to_hf_cache(cache, "org/name", commit_b, tmp_path / "b", ref="v1")
    for variable, value in (("HF_HUB_OFFLINE", True), ("HF_HUB_CACHE", str(cache))):
        monkeypatch.setenv(variable, str(value))
        monkeypatch.setattr(huggingface_hub.constants, variable, value)  # read once at import time
    return {"models": models, "commits": (commit_a, commit_b), "cache": cache}


def test_repo_id_loads_from_the_cache_offline(hf_cache, network_calls):
    a, b = hf_cache["models"]["a"], hf_cache["models"]["b"]
    assert_identical(a, VAEModel.from_pretrained("org/name"))
    assert_identical(a, VAEModel.from_pretrained("org/name", subfolder="vae"))
    assert_identical(b, VAEModel.from_pretrained("org/name", revision="v1"))
    assert_identical(b, VAEModel.from_pretrained("org/name", revision=hf_cache["commits"][1]))
    assert_identical(a, VAEModel.from_pretrained("org/name", cache_dir=hf_cache["cache"], local_files_only=True))
    assert network_calls == []  # offline mode stopped every request before it reached the network


def test_repo_id_refusals_offline(hf_cache, network_calls):
    with pytest.raises(OSError, match="cannot load a VAEModel from org/missing"):
        VAEModel.from_pretrained("org/missing")
    with pytest.raises(OSError, match=r"org/name \(subfolder 'unet'\): cannot read its config.json"):
        VAEModel.from_pretrained("org/name", subfolder="unet")
    assert network_calls == []


def test_without_offline_mode_requests_do_reach_the_transport(hf_cache, network_calls, monkeypatch):
    """The control for the tests above: the patched transport really is where requests would leave the machine."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(NetworkUsed):
        VAEModel.from_pretrained("org/name")
    assert network_calls and network_calls[0].startswith(huggingface_hub.constants.ENDPOINT)
