"""vae_hub.hub: model card, push, Space deploy and loading by repo id — all offline.

The Hub is replaced by ``FakeHfApi`` at the network boundary (every call checked against ``HfApi``'s real
signature); loading by repo id reads a populated HF cache under ``HF_HUB_OFFLINE=1``.
"""

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import gradio
import httpx2
import hub_doubles
import huggingface_hub.constants
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DModel
from hub_doubles import TOKEN, FakeHfApi, folder_digest, http_error, populate_hf_cache, tiny_model_folder
from huggingface_hub import ModelCard, SpaceCard
from huggingface_hub.errors import OfflineModeIsEnabled

import vae_hub
from vae_hub import LatentDiffusionPipeline, VAEModel, hub, remote_code
from vae_hub.pipelines import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS


REPO = "vae-hub-tests/tiny-vae"
ALLOWED = [
    "config.json",
    "diffusion_pytorch_model.safetensors",
    "README.md",
    "metrics.json",
    "training_info.json",
    "samples.png",
    "reconstructions.png",
]


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty HF cache that every download reads, with the Hub offline."""
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once at import: patch it too
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Nothing here may reach the network: the Hub is the test double, downloads come from the cache."""

    def refuse(self, request):
        raise AssertionError(f"a test tried to reach {request.url}")

    monkeypatch.setattr(httpx2.HTTPTransport, "handle_request", refuse)


@pytest.fixture(autouse=True)
def no_ambient_token(monkeypatch, tmp_path):
    """No token from the machine running the tests: only what a test sets."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


# ------------------------------------------------------------------------------------------------ model card
def test_card_metadata_round_trips_and_carries_the_evaluation(folder):
    card = hub.write_model_card(folder, REPO)
    loaded = ModelCard.load(folder / "README.md")
    assert loaded.data.to_dict() == card.data.to_dict()
    data = loaded.data
    assert data.library_name == "vae-hub"  # not "diffusers": no DiffusionPipeline can load this model
    assert data.license == "apache-2.0"
    assert set(data.tags) >= {"vae", "image-generation", "vae-hub"}
    assert data.datasets == ["zalando-datasets/fashion_mnist"]
    assert data.pipeline_tag == "unconditional-image-generation"
    assert data.base_model is None
    assert data.model_name == "tiny-vae"
    results = {r.metric_type: r for r in data.eval_results}
    assert set(results) == {"nll", "negative_elbo", "reconstruction", "kl", "mse", "psnr"}  # no bits/dim: Bernoulli
    assert results["nll"].metric_value == 236.81 and results["negative_elbo"].metric_value == 241.37
    assert results["psnr"].metric_value == 19.08 and results["mse"].metric_value == 0.01234
    assert {(r.dataset_type, r.dataset_split) for r in data.eval_results} == {
        ("zalando-datasets/fashion_mnist", "test")
    }
    assert "nats/image, bernoulli likelihood" in results["nll"].metric_name


def test_card_body_describes_model_figures_training_and_citation(folder):
    text = str(hub.build_model_card(folder, REPO))
    n_params = sum(p.numel() for p in VAEModel.from_pretrained(folder).parameters())
    for expected in (
        "![samples](samples.png)",
        "![reconstructions](reconstructions.png)",  # embedded, uploaded with the model
        f"{n_params:,}",
        "4-dimensional",
        "12×12 grayscale",
        "2-component Gaussian mixture",
        "Bernoulli",
        "| 236.81 nats |",
        "| 19.08 dB |",
        "Active latent units: 3 of 4",
        "| Epochs | 30 |",
        "| Batch size | 64 per process × 2 processes |",
        "| Precision | bf16 |",
        "| Wall time | 30 min 34 s |",
        "1× NVIDIA H100 80GB HBM3",
        "| Training images | 54,000 |",
        f'VAEModel.from_pretrained("{REPO}")',
        f"--pretrained_model_name_or_path {REPO}",
        "accelerate launch",
        "## Intended use and limitations",
        "Auto-Encoding Variational {B}ayes",
        "Kingma",
    ):
        assert expected in text, expected
    assert "| Negative ELBO | 241.37 nats |" in text


def test_card_tables_keep_their_columns_and_say_how_the_prior_was_chosen(folder):
    from markdown_it import MarkdownIt

    info = json.loads((folder / "training_info.json").read_text())
    info.update(
        dataset_name="data|with|pipes",
        hardware="CPU | 2 cores\nshared",
        mixture_prior={
            "num_components": 2,
            "method": "held-out log-likelihood",
            "num_codes": 500,
            "seed": 0,
            "held_out_log_likelihood_nats_per_code": {"1": -3.5, "2": -2.25, "5": -2.2},
        },
    )
    (folder / "training_info.json").write_text(json.dumps(info))
    text = str(hub.build_model_card(folder, REPO))
    html = MarkdownIt("commonmark").enable("table").render(text.split("---", 2)[2])
    rows = [row.split("</tr>")[0] for table in html.split("<table>")[1:] for row in table.split("<tr>")[1:]]
    assert rows and all(row.count("<td>") + row.count("<th>") == 2 for row in rows)  # no row split by a "|"
    assert "<td><code>data|with|pipes</code></td>" in html and "<td>CPU | 2 cores shared</td>" in html
    assert (
        "Mixture prior: K = 2 components, chosen from the data: each candidate was fitted to 80% of 500 training codes"
    ) in text and "K=2: -2.25" in text


def test_card_shows_the_evaluation_command_when_metrics_record_one(folder):
    """`python -m vae_hub.evaluate` writes its command into metrics.json; the card repeats it under the table."""
    assert "Measured with" not in str(hub.build_model_card(folder, REPO))
    metrics = json.loads((folder / "metrics.json").read_text())
    command = "python -m vae_hub.evaluate --model m --dataset_name d --iw_samples 1000 --compile"
    (folder / "metrics.json").write_text(json.dumps({**metrics, "command": command}))
    assert f"Measured with:\n\n```bash\n{command}\n```" in str(hub.build_model_card(folder, REPO))


def test_card_names_no_folder_of_the_training_machine(folder, tmp_path):
    """Recorded commands keep relative paths and lose the absolute ones' folders (the Space shows the card)."""
    info = json.loads((folder / "training_info.json").read_text())
    info["command"] = (
        f"accelerate launch training/train_vae.py --dataset_name ../data/fashion --output_dir "
        f"{tmp_path}/runs/fashion-vae --cache_dir={tmp_path}/cache --seed 0"
    )
    (folder / "training_info.json").write_text(json.dumps(info))
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["command"] = f"python -m vae_hub.evaluate --model {tmp_path}/runs/fashion-vae --split test"
    (folder / "metrics.json").write_text(json.dumps(metrics))
    text = str(hub.build_card(folder, REPO))
    assert str(tmp_path) not in text
    assert (
        "accelerate launch training/train_vae.py --dataset_name ../data/fashion --output_dir fashion-vae "
        "--cache_dir=cache --seed 0"
    ) in text
    assert "python -m vae_hub.evaluate --model fashion-vae --split test" in text


TRAIN_SCRIPT = Path(__file__).resolve().parents[1] / "training" / "train_vae.py"


@pytest.mark.skipif(not TRAIN_SCRIPT.is_file(), reason="training/train_vae.py is not in this checkout")
def test_card_fine_tuning_command_is_accepted_by_the_training_script(folder):
    """The card's ``accelerate launch`` command parses with the script's own argument parser."""
    commands = re.findall(r"```bash\n(accelerate launch .*?)```", str(hub.build_model_card(folder, REPO)), re.S)
    (command,) = [c for c in commands if "--pretrained_model_name_or_path" in c]  # the other one is the record
    argv = shlex.split(command.replace("\\\n", " ").replace("<dataset id or folder>", "someone/images"))
    assert argv[:3] == ["accelerate", "launch", "training/train_vae.py"]
    spec = importlib.util.spec_from_file_location("train_vae_for_card_test", TRAIN_SCRIPT)
    train_vae = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_vae)
    args = train_vae.parse_args(argv[3:])
    assert args.pretrained_model_name_or_path == REPO and args.dataset_name == "someone/images"


def test_bare_saved_model_still_gets_a_card(tmp_path):
    folder = tmp_path / "bare"
    VAEModel(block_out_channels=(8,), norm_num_groups=4, latent_dim=2, likelihood="gaussian").save_pretrained(folder)
    card = hub.write_model_card(folder)
    assert ModelCard.load(folder / "README.md").data.to_dict() == card.data.to_dict()
    assert card.data.eval_results is None and card.data.datasets is None
    text = str(card)
    assert 'VAEModel.from_pretrained("<your-namespace>/bare")' in text and "Replace `<your-namespace>/bare`" in text
    assert "No evaluation was saved" in text and "No training record" in text
    assert "discretised Gaussian" in text and "mixture" not in text


def test_card_links_hub_ids_only(tmp_path):
    """A local dataset folder is named, not linked; ``dataset_id`` and a Hub base model go to the metadata."""
    folder = tiny_model_folder(tmp_path / "ft", clutter=False)
    info = json.loads((folder / "training_info.json").read_text())
    info.update(dataset_name=str(tmp_path / "fashion_mnist"), base_model="vae-hub/fashion-mnist-vae")
    (folder / "training_info.json").write_text(json.dumps(info))
    (tmp_path / "fashion_mnist").mkdir()
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["dataset"] = str(tmp_path / "fashion_mnist")
    (folder / "metrics.json").write_text(json.dumps(metrics))

    local = hub.build_model_card(folder, REPO)
    assert local.data.datasets is None and local.data.base_model == "vae-hub/fashion-mnist-vae"
    assert {r.dataset_type for r in local.data.eval_results} == {"fashion_mnist"}
    assert "[vae-hub/fashion-mnist-vae](https://huggingface.co/vae-hub/fashion-mnist-vae)" in str(local)

    linked = hub.build_model_card(folder, REPO, dataset_id="zalando-datasets/fashion_mnist")
    assert linked.data.datasets == ["zalando-datasets/fashion_mnist"]
    assert "| Dataset | `fashion_mnist` ([zalando-datasets/fashion_mnist]" in str(linked)  # the folder by its name
    assert str(tmp_path) not in str(linked)


def test_card_refuses_a_folder_that_is_not_an_autoencoder(tmp_path):
    UNet2DModel(
        sample_size=8,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        layers_per_block=1,
        down_block_types=("DownBlock2D",) * 2,
        up_block_types=("UpBlock2D",) * 2,
    ).save_pretrained(tmp_path / "u")
    with pytest.raises(ValueError, match="UNet2DModel, not one of VAEModel"):
        hub.write_model_card(tmp_path / "u")
    assert not (tmp_path / "u" / "README.md").exists()


def test_an_autoencoder_kl_folder_gets_a_diffusers_card_and_pushes_without_remote_code(tmp_path):
    AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=2).save_pretrained(tmp_path / "kl")
    card = hub.write_model_card(tmp_path / "kl", REPO)
    assert card.data.library_name == "diffusers" and f'AutoencoderKL.from_pretrained("{REPO}")' in str(card)
    files = hub.push_files(tmp_path / "kl", REPO)
    assert sorted(files) == ["README.md", "config.json", "diffusion_pytorch_model.safetensors"]
    assert "auto_map" not in json.loads((tmp_path / "kl" / "config.json").read_text())


def test_card_snippet_runs_as_pasted_from_the_hf_cache(folder, offline_cache, tmp_path, monkeypatch):
    """The usage snippet loads the repo id through huggingface_hub's cache, offline, and runs end to end."""
    card = hub.write_model_card(folder, REPO)
    populate_hf_cache(offline_cache, REPO, {n: folder / n for n in hub.upload_file_list(folder)})
    snippet, remote = python_blocks(str(card))  # with vae-hub; without it (run in test_remote_code.py)
    assert "trust_remote_code=True" in remote and "vae_hub" not in remote
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "model-card-snippet", "exec"), {})
    assert (tmp_path / "samples.png").is_file() and (tmp_path / "interpolation.png").is_file()


# ------------------------------------------------------------------------------------------------ load back
def test_load_refuses_a_pythae_style_repo(offline_cache):
    config = {"name": "VAEConfig", "input_dim": [1, 28, 28], "latent_dim": 16, "reconstruction_loss": "bce"}
    populate_hf_cache(
        offline_cache,
        "someone/pythae-vae",
        {"config.json": json.dumps(config).encode(), "model.pt": b"pickle", "environment.json": b"{}"},
        "v2",
    )
    with pytest.raises(ValueError, match=r"someone/pythae-vae.*config without _class_name.*not (a )?VAEModel"):
        VAEModel.from_pretrained("someone/pythae-vae", revision="v2")


def test_load_refuses_a_plain_diffusers_autoencoder_repo(tmp_path, offline_cache):
    kl = tmp_path / "kl"
    AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=2).save_pretrained(kl)
    populate_hf_cache(offline_cache, "someone/sd-like", {f"vae/{p.name}": p for p in kl.iterdir()})
    with pytest.raises(ValueError, match=r"someone/sd-like.*AutoencoderKL.*not (a )?VAEModel"):
        VAEModel.from_pretrained("someone/sd-like", subfolder="vae", revision="main")


# ------------------------------------------------------------------------------------------------ push
def test_upload_file_list_is_an_allow_list(folder):
    hub.write_model_card(folder, REPO)
    assert hub.upload_file_list(folder) == ALLOWED  # no checkpoints, logs, optimizer/RNG states, pickles, caches
    (folder / "latent_map_sample.npz").write_bytes(b"npz")  # the Space's latent-map sample travels with the model
    assert hub.upload_file_list(folder) == ALLOWED[:5] + ["latent_map_sample.npz"] + ALLOWED[5:]


def test_push_uploads_exactly_the_allow_list_in_one_commit(folder):
    hub.write_model_card(folder, REPO)
    before = folder_digest(folder)
    api = FakeHfApi()
    url = hub.push_to_hub(folder, REPO, token=TOKEN, api=api)
    assert url == f"https://huggingface.co/{REPO}/commit/{'0' * 40}"
    assert api.methods_called() == ["create_repo", "create_commit"]
    assert api.calls[0][1] == {
        "repo_id": REPO,
        "repo_type": "model",
        "private": False,
        "exist_ok": True,
        "token": TOKEN,
    }
    (commit,) = api.commits
    assert (commit["repo_id"], commit["repo_type"], commit["revision"], commit["token"]) == (
        REPO,
        "model",
        None,
        TOKEN,
    )
    assert sorted(commit["files"]) == sorted(ALLOWED + ["modeling_vae_hub.py"])  # + the code, for remote loading
    for name, data in commit["files"].items():
        assert TOKEN.encode() not in data
        if name in ("metrics.json", "training_info.json"):  # the records, as a push shares them
            assert json.loads(data) == hub.public_record(json.loads((folder / name).read_text())), name
        elif name not in ("config.json", "modeling_vae_hub.py"):
            assert data == (folder / name).read_bytes(), name  # uploaded as is: the card was written for this repo
    config = json.loads(commit["files"]["config.json"])
    assert config.pop("auto_map") == {"AutoModel": "modeling_vae_hub.VAEModel"}
    assert config == json.loads((folder / "config.json").read_text())
    assert commit["files"]["modeling_vae_hub.py"] == remote_code.model_code("VAEModel").encode()
    assert folder_digest(folder) == before


def test_push_private_creates_a_private_repo_on_a_new_branch(folder):
    api = FakeHfApi()
    hub.push_to_hub(folder, REPO, private=True, revision="v1", token=TOKEN, api=api)
    assert api.methods_called() == ["create_repo", "repo_info", "create_branch", "create_commit"]
    assert api.calls[0][1]["private"] is True and api.repos[("model", REPO)] is True
    assert api.calls[2][1] == {"repo_id": REPO, "branch": "v1", "repo_type": "model", "exist_ok": True, "token": TOKEN}
    assert api.commits[0]["revision"] == "v1"


def test_push_private_refuses_an_existing_public_repo(folder):
    before = folder_digest(folder)
    api = FakeHfApi(repos={("model", REPO): False})
    with pytest.raises(hub.HubError, match="already exists and is public"):
        hub.push_to_hub(folder, REPO, private=True, token=TOKEN, api=api)
    assert api.commits == [] and folder_digest(folder) == before


def test_push_regenerates_a_card_written_for_another_repo_without_touching_the_folder(folder):
    hub.write_model_card(folder, dataset_id="zalando-datasets/fashion_mnist")  # training without --hub_model_id
    before = folder_digest(folder)
    api = FakeHfApi()
    hub.push_to_hub(folder, REPO, token=TOKEN, api=api)
    uploaded = api.commits[0]["files"]["README.md"].decode()
    assert f'VAEModel.from_pretrained("{REPO}")' in uploaded and "<your-namespace>" not in uploaded
    assert ModelCard(uploaded).data.datasets == ["zalando-datasets/fashion_mnist"]  # the dataset link survives
    assert folder_digest(folder) == before


def test_push_uploads_a_hand_written_readme_as_is_and_makes_one_when_missing(folder, tmp_path):
    (folder / "README.md").write_text("# My own card\n")
    api = FakeHfApi()
    hub.push_to_hub(folder, REPO, token=TOKEN, api=api)
    assert api.commits[0]["files"]["README.md"] == b"# My own card\n"

    (folder / "README.md").unlink()
    hub.push_to_hub(folder, REPO, token=TOKEN, api=api)
    assert f'from_pretrained("{REPO}")' in api.commits[1]["files"]["README.md"].decode()
    assert not (folder / "README.md").exists()


@pytest.mark.parametrize("leak", [TOKEN, "hf_" + "A" * 34])  # the token in use, or anyone's
def test_push_refuses_a_file_holding_a_token_before_any_hub_call(folder, leak):
    info = json.loads((folder / "training_info.json").read_text())
    info["args"]["hub_token"] = leak
    (folder / "training_info.json").write_text(json.dumps(info))
    api = FakeHfApi()
    with pytest.raises(hub.HubError, match="training_info.json contains a Hugging Face token") as err:
        hub.push_to_hub(folder, REPO, token=TOKEN, api=api)
    assert api.calls == [] and TOKEN not in str(err.value)


def test_push_refuses_a_folder_without_safetensors_weights(folder):
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(OSError, match="no file named diffusion_pytorch_model.safetensors"):
        hub.push_to_hub(folder, REPO, token=TOKEN, api=FakeHfApi())


@pytest.mark.parametrize("repo_id", ["no-namespace", "a/b/c", "bad name/x"])
def test_push_refuses_a_malformed_repo_id(folder, repo_id):
    with pytest.raises(hub.HubError, match="invalid repo id"):
        hub.push_to_hub(folder, repo_id, token=TOKEN, api=FakeHfApi())


@pytest.mark.parametrize(
    "method, error, message",
    [
        ("create_repo", OfflineModeIsEnabled("offline mode is enabled"), "cannot reach the Hugging Face Hub"),
        ("create_repo", httpx2.ConnectError("[Errno 111] Connection refused"), "cannot reach the Hugging Face Hub"),
        ("create_repo", http_error(401, "Invalid credentials"), "unauthorised: the Hub rejected the token"),
        (
            "create_commit",
            http_error(403, "You don't have the rights"),
            f"forbidden: the token may not write to {REPO}",
        ),
        ("create_commit", http_error(409, "A repo with this name already exists"), f"name clash: {REPO}"),
    ],
)
def test_push_hub_failures_give_one_clear_message_and_leave_the_folder_intact(folder, method, error, message):
    before = folder_digest(folder)
    with pytest.raises(hub.HubError, match=message) as err:
        hub.push_to_hub(folder, REPO, token=TOKEN, api=FakeHfApi(fail={method: error}))
    assert "Nothing was uploaded" in str(err.value) and TOKEN not in str(err.value)
    assert folder_digest(folder) == before


def test_token_comes_from_the_argument_then_hf_token_then_the_login_cache(monkeypatch, tmp_path):
    with pytest.raises(hub.HubError, match="no Hugging Face token"):
        hub.resolve_token()
    login = tmp_path / "login" / "token"
    login.parent.mkdir()
    login.write_text("hf_fromTheLoginCache")
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(login))
    assert hub.resolve_token() == "hf_fromTheLoginCache"
    monkeypatch.setenv("HF_TOKEN", "hf_fromTheEnvironment")
    assert hub.resolve_token() == "hf_fromTheEnvironment"
    assert hub.resolve_token("hf_fromTheArgument") == "hf_fromTheArgument"


def test_push_uses_hf_token_from_the_environment(folder, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = FakeHfApi()
    hub.push_to_hub(folder, REPO, api=api)
    assert {args["token"] for _, args in api.calls} == {TOKEN}


# ------------------------------------------------------------------------------------------------ Space
@pytest.fixture
def space_dir(tmp_path):
    """A small Space source folder: app, requirements naming vae-hub, examples, one shipped model with clutter."""
    space = tmp_path / "space"
    (space / "examples").mkdir(parents=True)
    (space / "app.py").write_text("import vae_hub\n")
    (space / "requirements.txt").write_text("torch>=2.13.0\ndiffusers>=0.42.1\nvae-hub>=0.1  # ourselves\n-e ..\n")
    (space / "examples" / "bag_0.png").write_bytes(b"png")
    (space / "examples" / ".DS_Store").write_bytes(b"junk")
    (space / "make_examples.py").write_text("# a dev script, not part of the Space\n")
    tiny_model_folder(space / "models" / "tiny-vae")
    return space


def package_files() -> set[str]:
    package = Path(vae_hub.__file__).parent
    return {f"vae_hub/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py")}


def test_shipped_model_files_name_no_folder_of_the_machine_that_trained_them():
    """Their records travel to the Hub with them: commands and arguments name folders relative to the repository."""
    shipped = Path(__file__).resolve().parents[1] / "space" / "models"
    texts = [p for p in shipped.rglob("*") if p.suffix in (".json", ".md", ".py")]
    assert len(texts) > 10
    absolute = re.compile(r"(?<![\w.])/(?:work|home|root|tmp|Users|mnt|data)/")
    assert not [p.relative_to(shipped).as_posix() for p in texts if absolute.search(p.read_text())]


def test_deploy_space_uploads_app_package_and_shipped_models(space_dir):
    api = FakeHfApi()
    hub.deploy_space("vae-hub-tests/space", token=TOKEN, api=api, space_dir=space_dir)
    assert api.methods_called() == ["create_repo", "list_repo_files", "create_commit"]
    assert api.calls[0][1] == {
        "repo_id": "vae-hub-tests/space",
        "repo_type": "space",
        "space_sdk": "gradio",
        "private": False,
        "exist_ok": True,
        "token": TOKEN,
    }
    (commit,) = api.commits
    assert commit["repo_type"] == "space"
    files = commit["files"]
    assert (
        set(files)
        == {"README.md", "app.py", "requirements.txt", "space_config.json", "examples/bag_0.png"}
        | {f"models/tiny-vae/{n}" for n in ALLOWED if n != "README.md"}
        | package_files()
    )
    assert files["requirements.txt"].decode() == "torch>=2.13.0\ndiffusers>=0.42.1\n"
    assert json.loads(files["space_config.json"]) == {"model_id": None}
    assert files["vae_hub/models/vae.py"] == Path(vae_hub.__file__).with_name("models").joinpath("vae.py").read_bytes()
    data = SpaceCard(files["README.md"].decode()).data
    assert (data.sdk, data.sdk_version, data.app_file) == ("gradio", gradio.__version__, "app.py")
    assert data.title and data.emoji and data.colorFrom and data.colorTo and data.license == "apache-2.0"
    assert data.models is None
    assert all(TOKEN.encode() not in content for content in files.values())


def test_deploy_space_with_a_model_id_ships_no_weights_and_points_at_the_model(space_dir):
    (space_dir / "README.md").write_text("---\ntitle: Fashion VAE\nemoji: 👗\n---\n\n# Our own Space text\n")
    api = FakeHfApi()
    hub.deploy_space("vae-hub-tests/space", model_id=REPO, private=True, token=TOKEN, api=api, space_dir=space_dir)
    assert api.methods_called() == ["create_repo", "repo_info", "list_repo_files", "create_commit"]
    files = api.commits[0]["files"]
    assert not any(name.startswith("models/") for name in files)
    assert json.loads(files["space_config.json"]) == {"model_id": REPO}
    card = SpaceCard(files["README.md"].decode())
    assert card.data.models == [REPO] and card.data.title == "Fashion VAE" and card.data.emoji == "👗"
    assert card.data.sdk == "gradio" and "# Our own Space text" in card.text


def test_redeploying_leaves_exactly_the_new_file_set_in_the_space(space_dir):
    api = FakeHfApi()
    hub.deploy_space("vae-hub-tests/space", token=TOKEN, api=api, space_dir=space_dir)
    shipped = {name for name in api.files[("space", "vae-hub-tests/space")] if name.startswith("models/")}
    hub.deploy_space("vae-hub-tests/space", model_id=REPO, token=TOKEN, api=api, space_dir=space_dir)
    assert set(api.commits[1]["deleted"]) == shipped  # the old weights go; .gitattributes stays
    assert set(api.files[("space", "vae-hub-tests/space")]) == set(api.commits[1]["files"]) | {".gitattributes"}


def test_deploy_space_refuses_a_gradio_pin_other_than_the_sdk_version(space_dir):
    (space_dir / "requirements.txt").write_text(f"gradio>={gradio.__version__}\n")  # a pin that agrees is kept
    assert hub.space_upload_files(space_dir)["requirements.txt"] == f"gradio>={gradio.__version__}\n".encode()
    (space_dir / "requirements.txt").write_text("gradio==3.0.0\n")
    with pytest.raises(hub.HubError, match="asks for gradio==3.0.0"):
        hub.deploy_space("vae-hub-tests/space", token=TOKEN, api=FakeHfApi(), space_dir=space_dir)


def test_deploy_space_without_shipped_models_needs_a_model_id(space_dir):
    shutil.rmtree(space_dir / "models")
    with pytest.raises(hub.HubError, match="pass --model-id"):
        hub.deploy_space("vae-hub-tests/space", token=TOKEN, api=FakeHfApi(), space_dir=space_dir)


SPACE_APP = Path(hub.SPACE_DIR) / "app.py"
needs_space_app = pytest.mark.skipif(not SPACE_APP.is_file(), reason="space/app.py is not written yet")


def run_deployed(files: dict[str, bytes], folder: Path, script: str, **env_vars) -> str:
    """Write exactly ``files`` into the empty ``folder`` and run ``script`` there in a fresh interpreter, offline,
    where ``vae_hub`` can only come from the uploaded copy (the repo is not on the path)."""
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    prologue = (
        "import sys; sys.path.insert(0, '.')\n"
        "import app, vae_hub\n"
        f"assert vae_hub.__file__.startswith({str(folder)!r}), vae_hub.__file__\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VAE_MODEL", "HF_TOKEN")}
    env.update(
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_DISABLE_TELEMETRY="1",
        GRADIO_SERVER_NAME="127.0.0.1",
        **env_vars,
    )
    result = subprocess.run(
        [sys.executable, "-c", prologue + script], cwd=folder, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


@needs_space_app
def test_deployed_space_with_its_shipped_models_serves_samples_offline(tmp_path):
    """The uploaded file set alone runs the app: launched on 127.0.0.1, /sample answers from a shipped model."""
    api = FakeHfApi()
    hub.deploy_space("vae-hub-tests/space", token=TOKEN, api=api)
    out = run_deployed(
        api.commits[0]["files"],
        tmp_path / "deployed",
        (
            "from pathlib import Path\n"
            "from gradio_client import Client\n"
            "from vae_hub.explore import Explorer\n"
            "explorer = Explorer.from_space_dir('.')\n"
            "assert explorer.model_ids and all(m in explorer.shipped for m in explorer.model_ids), explorer.model_ids\n"
            "demo = app.build_demo(explorer)\n"
            "demo.launch(prevent_thread_lock=True, quiet=True)\n"
            "grid = Client(demo.local_url, verbose=False).predict(explorer.default_model, 4, 0, 1.0, 'standard', "
            "api_name='/sample')\n"
            "assert Path(grid).is_file(), grid\n"
            "demo.close()\n"
            "print('served', explorer.model_ids)\n"
        ),
    )
    assert "served" in out


@needs_space_app
def test_deployed_space_with_a_model_id_loads_it_from_the_hub_cache_offline(tmp_path, offline_cache):
    """Deployed with --model-id: no weights ship, the app offers that id and loads it by repo id."""
    torch.manual_seed(0)
    model = tmp_path / "model"
    VAEModel(block_out_channels=(8, 16), norm_num_groups=4, latent_dim=2, sample_size=28).save_pretrained(model)
    populate_hf_cache(offline_cache, REPO, {p.name: p for p in model.iterdir()})
    api = FakeHfApi()
    hub.deploy_space("vae-hub-tests/space", model_id=REPO, token=TOKEN, api=api)
    out = run_deployed(
        api.commits[0]["files"],
        tmp_path / "deployed",
        (
            "import gradio as gr\n"
            "from vae_hub.explore import Explorer\n"
            "explorer = Explorer.from_space_dir('.')\n"
            f"assert explorer.model_ids == [{REPO!r}], explorer.model_ids\n"
            "assert isinstance(app.build_demo(explorer), gr.Blocks)\n"
            f"print('sampled', explorer.sample({REPO!r}, 4, 0, 1.0, 'standard').size)\n"
        ),
        HF_HUB_CACHE=str(offline_cache),
    )
    assert "sampled" in out


# ------------------------------------------------------------------------------------------------ pipelines
PIPELINE_REPO = "vae-hub-tests/tiny-ldm"
PIPELINE_FILES = [
    "model_index.json",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "scheduler/scheduler_config.json",
    "metrics.json",
    "training_info.json",
    "samples.png",
    "pipeline.py",
    "vae/vae_hub.py",
    "vae/modeling_vae_hub.py",
    "README.md",
]


def test_pipeline_push_uploads_the_pipeline_and_its_code_in_one_commit(pipeline_folder):
    before = folder_digest(pipeline_folder)
    api = FakeHfApi()
    hub.push_to_hub(pipeline_folder, PIPELINE_REPO, private=True, revision="v1", token=TOKEN, api=api)
    assert api.methods_called() == ["create_repo", "repo_info", "create_branch", "create_commit"]  # as for models
    (commit,) = api.commits
    assert commit["revision"] == "v1" and api.repos[("model", PIPELINE_REPO)] is True
    files = commit["files"]
    assert list(files) == PIPELINE_FILES  # no checkpoints, logs, pickles, latent caches or notes
    for name in (
        "vae/diffusion_pytorch_model.safetensors",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "scheduler/scheduler_config.json",
        "samples.png",
    ):
        assert files[name] == (pipeline_folder / name).read_bytes(), name
    for name in ("metrics.json", "training_info.json"):  # the records, as a push shares them
        assert json.loads(files[name]) == hub.public_record(json.loads((pipeline_folder / name).read_text())), name
    index, vae_config = json.loads(files["model_index.json"]), json.loads(files["vae/config.json"])
    assert index.pop("auto_map") == vae_config.pop("auto_map") == {"AutoModel": "modeling_vae_hub.SpatialVAEModel"}
    assert vae_config == json.loads((pipeline_folder / "vae" / "config.json").read_text())
    assert files["pipeline.py"] == remote_code.pipeline_code("LatentDiffusionPipeline").encode()
    assert files["pipeline.py"] != (pipeline_folder / "pipeline.py").read_bytes()  # not the folder's vae-hub loader
    assert files["vae/vae_hub.py"] == remote_code.model_code("SpatialVAEModel").encode()
    assert f'LatentDiffusionPipeline.from_pretrained("{PIPELINE_REPO}")' in files["README.md"].decode()
    assert "Upload LatentDiffusionPipeline" in api.calls[-1][1]["commit_message"]
    assert folder_digest(pipeline_folder) == before


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: shutil.rmtree(f / "unet"), "not a complete LatentDiffusionPipeline folder: unet/ is missing"),
        (
            lambda f: (f / "unet" / "diffusion_pytorch_model.safetensors").unlink(),
            "unet/diffusion_pytorch_model.safetensors missing",
        ),
        (lambda f: (f / "scheduler" / "scheduler_config.json").unlink(), "scheduler/scheduler_config.json missing"),
        (
            lambda f: (f / "vae" / "diffusion_pytorch_model.safetensors").unlink(),
            "vae/diffusion_pytorch_model.safetensors",
        ),
        (lambda f: (f / "model_index.json").write_text("{not json"), "cannot read model_index.json"),
        (lambda f: (f / "model_index.json").write_text('{"_class_name": "DiTPipeline"}'), "holds a DiTPipeline"),
    ],
)
def test_a_half_trained_pipeline_is_refused_before_any_hub_call(pipeline_folder, tmp_path, damage, message):
    damage(pipeline_folder)
    before = folder_digest(pipeline_folder)
    api = FakeHfApi()
    with pytest.raises((ValueError, OSError), match=message):
        hub.push_to_hub(pipeline_folder, PIPELINE_REPO, token=TOKEN, api=api)
    with pytest.raises((ValueError, OSError), match=message):
        hub.write_push_files(pipeline_folder, PIPELINE_REPO, tmp_path / "dry")
    assert api.calls == [] and not (tmp_path / "dry").exists() and folder_digest(pipeline_folder) == before


@pytest.mark.parametrize("kind", ["model", "pipeline"])
def test_dry_run_writes_exactly_what_the_commit_uploads_without_a_token(kind, folder, pipeline_folder, tmp_path):
    source, repo = (folder, REPO) if kind == "model" else (pipeline_folder, PIPELINE_REPO)
    names = hub.write_push_files(source, repo, tmp_path / "dry")  # no token anywhere: none is needed
    api = FakeHfApi()
    hub.push_to_hub(source, repo, token=TOKEN, api=api)
    assert folder_digest(tmp_path / "dry") == folder_digest_of(api.commits[0]["files"])
    assert sorted(names) == sorted(api.commits[0]["files"])


@pytest.mark.parametrize("kind", ["model", "pipeline"])
def test_a_push_names_no_local_path_of_the_machine_that_trained_it(kind, saved_folder, saved_pipeline, tmp_path):
    """Issue 29: a locally trained model under /home/<user>/...: every uploaded file names its folders by their
    last part only (card, training_info.json, metrics.json)."""
    home = tmp_path / "home" / "alice-smith"
    source = Path(shutil.copytree(saved_folder if kind == "model" else saved_pipeline, home / "runs" / "mnist-model"))
    data, vae = str(home / "data" / "mnist"), str(home / "runs" / "mnist-spatial-vae")
    info = json.loads((source / "training_info.json").read_text())
    info.update(
        dataset_name=data,
        vae=vae,
        args={**info.get("args", {}), "output_dir": str(source), "pretrained_vae_model_name_or_path": vae},
        command=f"accelerate launch training/train.py --dataset_name {data} --output_dir={source}",
    )
    (source / "training_info.json").write_text(json.dumps(info))
    metrics = json.loads((source / "metrics.json").read_text())
    metrics["sample_quality"] = {
        "standard_prior": {
            "kind": "vae",
            "prior": "standard",
            "generator": str(source),
            "classifier": str(home / "clf"),
            "dataset": data,
            "split": "test",
            "num_samples": 100,
            "frechet_distance": 1.0,
            "class_match": None,
            "command": f"python -m vae_hub.evaluate_samples --generator {source} --dataset_name {data}",
        }
    }
    (source / "metrics.json").write_text(json.dumps(metrics))
    (source / "README.md").unlink(missing_ok=True)
    names = hub.write_push_files(source, REPO if kind == "model" else PIPELINE_REPO, tmp_path / "dry")
    for name in names:
        text = (tmp_path / "dry" / name).read_bytes().decode("utf-8", errors="replace")
        assert "alice-smith" not in text and str(tmp_path) not in text, name
    card = (tmp_path / "dry" / "README.md").read_text()
    assert (
        "`mnist`" in card
        and "--dataset_name mnist" in json.loads((tmp_path / "dry" / "training_info.json").read_text())["command"]
    )


def folder_digest_of(files: dict[str, bytes]) -> dict[str, str]:
    import hashlib

    return {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}


def test_dry_run_refuses_a_folder_that_is_not_empty_and_a_token_in_a_file(folder, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.txt").write_text("x")
    with pytest.raises(hub.HubError, match="not an empty folder"):
        hub.write_push_files(folder, REPO, tmp_path / "used")
    info = json.loads((folder / "training_info.json").read_text())
    (folder / "training_info.json").write_text(json.dumps({**info, "token": "hf_" + "B" * 34}))
    with pytest.raises(hub.HubError, match="training_info.json contains a Hugging Face token"):
        hub.write_push_files(folder, REPO, tmp_path / "dry")
    assert not (tmp_path / "dry").exists()


def test_pipeline_card_metadata_results_and_body(pipeline_folder, tmp_path):
    vae = tmp_path / "fashion-spatial-vae"  # the VAE's folder, with its own prior-sample numbers: the comparison
    vae.mkdir()
    (vae / "metrics.json").write_text(
        json.dumps(
            {
                "sample_quality": {
                    "standard_prior": {
                        "kind": "vae",
                        "prior": "standard",
                        "frechet_distance": 88.5,
                        "class_match": 0.41,
                        "num_samples": 10000,
                        "split": "test",
                    }
                }
            }
        )
    )
    info = json.loads((pipeline_folder / "training_info.json").read_text())
    (pipeline_folder / "training_info.json").write_text(json.dumps({**info, "vae": str(vae)}))
    card = hub.write_model_card(pipeline_folder, PIPELINE_REPO)
    assert ModelCard.load(pipeline_folder / "README.md").data.to_dict() == card.data.to_dict()
    data = card.data
    assert data.library_name == "diffusers" and data.pipeline_tag == "other" and data.license == "apache-2.0"
    assert {"class-conditional-image-generation", "latent-diffusion", "custom_code", "vae-hub"} <= set(data.tags)
    assert data.datasets == ["zalando-datasets/fashion_mnist"]
    assert data.base_model is None  # a local VAE folder is no Hub link
    results = {r.metric_type: r for r in data.eval_results}
    assert set(results) == {"frechet_distance", "class_match"}  # the pipeline's own numbers, not the VAE's
    assert results["frechet_distance"].metric_value == 12.346 and results["class_match"].metric_value == 0.8734
    assert results["frechet_distance"].dataset_split == "test"
    text = str(card)
    for expected in (
        "| 0 | T-shirt/top |",
        "| 2 | Sneaker |",
        "![samples](samples.png)",
        "| this pipeline, 25 steps, guidance 3 | 12.35 | 87.3% | 10,000 |",
        "| VAE, N(0, I) prior | 88.50 | 41.0% | 10,000 |",
        "python -m vae_hub.evaluate_samples --generator out --record",
        "accelerate launch training/train_latent_diffusion.py",
        "`UNet2DModel`",
        "4×8×8",
        "`DPMSolverMultistepScheduler`",
        "pin the commit you read",
        "Rombach",
        f"num_inference_steps={DEFAULT_NUM_INFERENCE_STEPS}, guidance_scale={DEFAULT_GUIDANCE_SCALE},",
    ):
        assert expected in text, expected

    (pipeline_folder / "training_info.json").write_text(json.dumps(info))  # trained on a Hub VAE
    assert hub.build_card(pipeline_folder, PIPELINE_REPO).data.base_model == "vae-hub/fashion-spatial-vae"


def test_pipeline_card_without_records_still_builds(tmp_path):
    from hub_doubles import tiny_pipeline

    tiny_pipeline().save_pretrained(tmp_path / "bare")
    card = hub.build_card(tmp_path / "bare")
    assert card.data.eval_results is None and card.data.base_model is None and card.data.datasets is None
    assert "No sample-quality numbers" in str(card) and "No training record" in str(card)
    assert 'from_pretrained("<your-namespace>/bare"' in str(card)


VAE_QUALITY = {  # as `python -m vae_hub.evaluate_samples --record` writes them (the fields the card reads)
    "standard_prior": {
        "kind": "vae",
        "prior": "standard",
        "num_samples": 10000,
        "frechet_distance": 9.1234,
        "classifier": "vae-hub/fashion-classifier",
        "dataset": "zalando-datasets/fashion_mnist",
        "split": "test",
        "command": "python -m vae_hub.evaluate_samples --generator vae --record",
    },
    "reconstructions_train": {
        "kind": "vae reconstructions",
        "images_split": "train",
        "num_samples": 2000,
        "frechet_distance": 4.5,
        "split": "test",
    },
}


def test_model_card_shows_its_sample_quality(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    (folder / "metrics.json").write_text(json.dumps({**metrics, "sample_quality": VAE_QUALITY}))
    card = hub.build_card(folder, REPO)
    text = str(card)
    for expected in (
        "| this model, N(0, I) prior | 9.12 | — | 10,000 |",
        "| this model, reconstructions of train images | 4.50 | — | 2,000 |",
        "[vae-hub/fashion-classifier](https://huggingface.co/vae-hub/fashion-classifier)",
        "python -m vae_hub.evaluate_samples --generator vae --record",
    ):
        assert expected in text, expected
    quality = [r for r in card.data.eval_results if r.metric_type == "frechet_distance"]
    assert [r.metric_value for r in quality] == [9.123, 4.5]
    assert "this model, N(0, I) prior, 10,000 samples" in quality[0].metric_name
    (folder / "metrics.json").write_text(json.dumps(metrics))
    assert "No sample-quality numbers were saved with this model" in str(hub.build_card(folder, REPO))


def test_a_pipelines_guidance_sweep_reads_in_order(pipeline_folder):
    metrics = json.loads((pipeline_folder / "metrics.json").read_text())
    first = metrics["sample_quality"]["steps_25_guidance_3"]
    sweep = {
        f"steps_{steps}_guidance_{g}": {**first, "num_inference_steps": steps, "guidance_scale": g}
        for steps, g in ((25, 4.0), (25, 1.0), (10, 4.0), (25, 2.0))
    }  # recorded out of order, as sweeps are
    (pipeline_folder / "metrics.json").write_text(json.dumps({**metrics, "sample_quality": sweep}))
    text = str(hub.build_card(pipeline_folder, PIPELINE_REPO))
    rows = [
        text.index(f"| this pipeline, {steps} steps, guidance {g} |")
        for steps, g in ((10, 4), (25, 1), (25, 2), (25, 4))
    ]
    assert rows == sorted(rows)


def test_card_compare_puts_other_generators_in_the_table_and_a_push_keeps_them(pipeline_folder, folder, tmp_path):
    from vae_hub import cli

    metrics = json.loads((folder / "metrics.json").read_text())
    (folder / "metrics.json").write_text(json.dumps({**metrics, "sample_quality": VAE_QUALITY}))
    assert cli.main(["card", str(pipeline_folder), "--compare", str(folder)]) == 0
    recorded = json.loads((pipeline_folder / "metrics.json").read_text())
    assert recorded["compared_with"] == {"tiny-vae": VAE_QUALITY}
    assert recorded["sample_quality"] == json.loads(json.dumps(hub_doubles.PIPELINE_METRICS["sample_quality"]))
    row = "| `tiny-vae`, N(0, I) prior | 9.12 | — | 10,000 |"
    text = (pipeline_folder / "README.md").read_text()
    assert row in text and text.index("| this pipeline, 25 steps, guidance 3 |") < text.index(row)
    data = ModelCard.load(pipeline_folder / "README.md").data
    assert all("tiny-vae" not in r.metric_name for r in data.eval_results)  # the model-index: its own numbers only
    # the folder's VAE is not here: the compared rows come from metrics.json alone, so a push shows them too
    hub.write_push_files(pipeline_folder, PIPELINE_REPO, tmp_path / "dry")
    assert row in (tmp_path / "dry" / "README.md").read_text()


def test_card_compare_refuses_numbers_that_do_not_compare(pipeline_folder, folder, tmp_path, capsys):
    from vae_hub import cli

    before = folder_digest(pipeline_folder)
    assert cli.main(["card", str(pipeline_folder), "--compare", str(folder)]) == 1
    assert "has no sample-quality records" in capsys.readouterr().err  # the fixture's model was never measured
    assert cli.main(["card", str(pipeline_folder), "--compare", str(pipeline_folder)]) == 1
    assert "is the folder whose card this is" in capsys.readouterr().err
    metrics = json.loads((folder / "metrics.json").read_text())
    other = {key: {**record, "classifier": "someone/else"} for key, record in VAE_QUALITY.items()}
    (folder / "metrics.json").write_text(json.dumps({**metrics, "sample_quality": other}))
    assert cli.main(["card", str(pipeline_folder), "--compare", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "measured with another classifier" in err and "someone/else" in err and "do not compare" in err
    assert cli.main(["card", str(pipeline_folder), "--compare", str(tmp_path / "missing")]) == 1
    assert folder_digest(pipeline_folder) == before  # nothing written


def test_deploy_space_carries_a_shipped_pipeline_and_refuses_a_half_trained_one(space_dir):
    from hub_doubles import tiny_pipeline_folder

    tiny_pipeline_folder(space_dir / "models" / "tiny-ldm")
    files = hub.space_upload_files(space_dir)
    shipped = {name.removeprefix("models/tiny-ldm/") for name in files if name.startswith("models/tiny-ldm/")}
    assert shipped == set(PIPELINE_FILES) - {"README.md", "pipeline.py", "vae/vae_hub.py", "vae/modeling_vae_hub.py"}
    assert {name for name in files if name.startswith("models/tiny-vae/")}  # the model still ships beside it
    shutil.rmtree(space_dir / "models" / "tiny-ldm" / "unet")
    with pytest.raises(ValueError, match="unet/ is missing"):
        hub.deploy_space("vae-hub-tests/space", token=TOKEN, api=FakeHfApi(), space_dir=space_dir)


def test_cli_push_dry_run_needs_no_token_and_calls_no_hub(pipeline_folder, tmp_path, capsys):
    from vae_hub import cli

    api = FakeHfApi()
    code = cli.main(
        ["push", str(pipeline_folder), "--repo-id", PIPELINE_REPO, "--dry-run", str(tmp_path / "dry")], api=api
    )
    out, err = capsys.readouterr()
    assert code == 0 and err == "" and api.calls == []
    assert "nothing was uploaded" in out and all(f"  {name}\n" in out + "\n" for name in PIPELINE_FILES)
    assert sorted(folder_digest(tmp_path / "dry")) == sorted(PIPELINE_FILES)
    code = cli.main(
        ["push", str(pipeline_folder), "--repo-id", PIPELINE_REPO, "--dry-run", str(tmp_path / "dry")], api=api
    )
    assert code == 1 and "not an empty folder" in capsys.readouterr().err


def test_a_pipeline_on_a_diffusers_vae_carries_only_the_pipeline_code(tmp_path):
    from diffusers import AutoencoderKL
    from hub_doubles import tiny_pipeline

    pipe = tiny_pipeline()
    torch.manual_seed(0)
    kl = AutoencoderKL(
        block_out_channels=(8, 8),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
    )
    kl_pipe = LatentDiffusionPipeline(kl, pipe.unet, pipe.scheduler, id2label=pipe.config.id2label)
    kl_pipe.save_pretrained(tmp_path / "kl")
    files = hub.push_files(tmp_path / "kl", PIPELINE_REPO)
    assert [name for name in files if name.endswith(".py")] == ["pipeline.py"]
    assert files["vae/config.json"] == (tmp_path / "kl" / "vae" / "config.json")  # uploaded as it is
    card = str(hub.build_card(tmp_path / "kl", PIPELINE_REPO))
    assert "its code (`pipeline.py`)" in card and "`diffusers.AutoencoderKL`, frozen" in card
