"""The ``vae-hub`` command line, against the ``FakeHfApi`` test double: exit codes, messages, no token in output."""

import json

import huggingface_hub.constants
import pytest
from hub_doubles import TOKEN, FakeHfApi, folder_digest, http_error, tiny_model_folder
from huggingface_hub import ModelCard

from vae_hub import VAEModel, cli


REPO = "vae-hub-tests/tiny-vae"


@pytest.fixture(autouse=True)
def only_the_test_token(monkeypatch, tmp_path):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))


def test_push_reports_the_commit_and_never_prints_the_token(folder, capsys):
    api = FakeHfApi()
    code = cli.main(
        ["push", str(folder), "--repo-id", REPO, "--private", "--revision", "v1", "--token", TOKEN], api=api
    )
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert f"https://huggingface.co/{REPO}" in out and f"{REPO}/commit/" in out
    assert api.methods_called() == ["create_repo", "repo_info", "create_branch", "create_commit"]
    assert api.calls[0][1]["private"] is True and api.commits[0]["revision"] == "v1"
    assert TOKEN not in out + err
    assert not any(TOKEN.encode() in data for data in api.commits[0]["files"].values())


def test_push_takes_the_token_from_hf_token(folder, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = FakeHfApi()
    assert cli.main(["push", str(folder), "--repo-id", REPO], api=api) == 0
    assert api.commits[0]["token"] == TOKEN and TOKEN not in "".join(capsys.readouterr())


@pytest.mark.parametrize(
    "fail, message",
    [
        ({"create_repo": http_error(401, "Invalid credentials")}, "unauthorised"),
        ({"create_commit": http_error(409, "conflict")}, "name clash"),
    ],
)
def test_push_failure_is_one_line_on_stderr_with_exit_1_and_the_folder_intact(folder, capsys, fail, message):
    before = folder_digest(folder)
    code = cli.main(["push", str(folder), "--repo-id", REPO, "--token", TOKEN], api=FakeHfApi(fail=fail))
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.startswith(f"vae-hub push: error: {message}") and err.count("\n") == 1
    assert TOKEN not in err and folder_digest(folder) == before


def test_push_without_any_token_says_how_to_log_in(folder, capsys):
    assert cli.main(["push", str(folder), "--repo-id", REPO], api=FakeHfApi()) == 1
    assert "hf auth login" in capsys.readouterr().err


def test_push_of_a_folder_that_is_not_a_model_fails_cleanly(tmp_path, capsys):
    assert cli.main(["push", str(tmp_path), "--repo-id", REPO, "--token", TOKEN], api=FakeHfApi()) == 1
    err = capsys.readouterr().err
    assert err.startswith("vae-hub push: error: ") and "config.json" in err and err.count("\n") == 1


def test_card_writes_the_readme(folder, capsys):
    assert cli.main(["card", str(folder), "--repo-id", REPO, "--dataset-id", "zalando-datasets/fashion_mnist"]) == 0
    assert f"{folder}/README.md" in capsys.readouterr().out
    card = ModelCard.load(folder / "README.md")
    assert card.data.datasets == ["zalando-datasets/fashion_mnist"] and f'"{REPO}"' in card.text


def test_deploy_space_with_a_model_id(tmp_path, capsys):
    space = tmp_path / "space"
    (space / "examples").mkdir(parents=True)
    (space / "app.py").write_text("import vae_hub\n")
    (space / "requirements.txt").write_text("torch\n")
    api = FakeHfApi()
    code = cli.main(
        [
            "deploy-space",
            "--space-id",
            "vae-hub-tests/space",
            "--model-id",
            REPO,
            "--space-dir",
            str(space),
            "--token",
            TOKEN,
        ],
        api=api,
    )
    out = capsys.readouterr().out
    assert code == 0 and "https://huggingface.co/spaces/vae-hub-tests/space" in out and f"loads {REPO}" in out
    assert api.commits[0]["repo_type"] == "space"
    assert json.loads(api.commits[0]["files"]["space_config.json"]) == {"model_id": REPO}


def test_deploy_space_from_a_folder_without_an_app_fails_cleanly(tmp_path, capsys):
    code = cli.main(
        ["deploy-space", "--space-id", "vae-hub-tests/space", "--space-dir", str(tmp_path), "--token", TOKEN],
        api=FakeHfApi(),
    )
    assert code == 1 and "has no app.py" in capsys.readouterr().err


def test_usage_errors_exit_2_and_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["push", "somewhere"])  # --repo-id is required
    assert exit_info.value.code == 2 and "--repo-id" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in cli.COMMANDS)


def test_prior_refits_a_saved_models_mixture_on_its_training_codes(tmp_path, capsys):
    from datasets_util import write_hub_dataset

    folder = tiny_model_folder(tmp_path / "model", clutter=False)
    changed = ("config.json", "diffusion_pytorch_model.safetensors", "README.md", "training_info.json")
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.name not in changed}
    data = write_hub_dataset(tmp_path / "data", n_train=300, n_test=4, size=12)
    assert (
        cli.main(
            [
                "prior",
                str(folder),
                "--dataset-name",
                str(data),
                "--components",
                "auto",
                "--max-codes",
                "200",
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    model = VAEModel.from_pretrained(folder)
    record = json.loads((folder / "training_info.json").read_text())["mixture_prior"]
    assert model.config.prior_components == record["num_components"] and record["num_codes"] == 200
    assert list(record["held_out_log_likelihood_nats_per_code"]) == ["1", "2", "5", "10"]  # 160 fitting codes
    assert record["command"].startswith(
        f"vae-hub prior {folder} --dataset-name {data} --split train --components auto"
    )
    assert f"Saved the {record['num_components']}-component mixture prior" in out
    assert "chosen from the data" in (folder / "README.md").read_text()
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name in before} == before  # the other files kept
    assert json.loads((folder / "training_info.json").read_text())["epochs"] == 30  # the record kept, prior added
