"""Loading without vae-hub: what a push uploads loads with diffusers alone (``trust_remote_code=True``).

Every load runs in a fresh interpreter (``python -I``) where ``import vae_hub`` raises ImportError — a machine with
diffusers but not vae-hub — from a ``--dry-run`` folder and by repo id from a populated HF cache, offline. Its
outputs must equal the package's for the same seed, bit for bit.
"""

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from diffusers.utils.dynamic_modules_utils import get_relative_imports
from hub_doubles import PIPELINE_CLASSES, populate_hf_cache, tiny_model_folder, tiny_pipeline_folder
from tiny import tiny_spatial_vae

from vae_hub import LatentDiffusionPipeline, SpatialVAEModel, VAEModel, hub, remote_code


MODEL_REPO = "vae-hub-tests/tiny-vae"
PIPELINE_REPO = "vae-hub-tests/tiny-ldm"

# The interpreter's first lines: vae_hub cannot be imported (the editable install is on the path otherwise).
NO_VAE_HUB = """
import importlib.abc, sys

class NoVaeHub(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "vae_hub" or name.startswith("vae_hub."):
            raise ImportError(f"{name}: this interpreter plays a machine without vae-hub")

sys.meta_path.insert(0, NoVaeHub())
try:
    import vae_hub
except ImportError:
    pass
else:
    raise AssertionError("vae_hub is importable")
"""

# diffusers 0.42 asks the Hub for a repo's commit (model_info) before it runs a model's remote code from a repo id,
# even when every file is cached (transformers stopped doing so in 2023, huggingface/transformers#22661). Offline,
# that one metadata call is answered here with the cached commit; every file still comes from the cache.
CACHED_MODEL_INFO = """
import types
from pathlib import Path
import diffusers.utils.dynamic_modules_utils as dynamic_modules

def cached_model_info(repo_id, revision=None, token=None):
    repo = Path(os.environ["HF_HUB_CACHE"]) / ("models--" + repo_id.replace("/", "--"))
    commit = (repo / "refs" / "main").read_text()
    assert revision in (None, "main", commit), revision
    return types.SimpleNamespace(sha=commit)

dynamic_modules.model_info = cached_model_info
"""


def run_without_vae_hub(script: str, tmp_path: Path, **env_vars) -> None:
    """Run ``script`` in an isolated interpreter without vae_hub, offline, with its own HF home (module cache)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PYTHON"))}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        OMP_NUM_THREADS="1",
        **env_vars,
    )
    prologue = NO_VAE_HUB + "import os\n" + (CACHED_MODEL_INFO if "HF_HUB_CACHE" in env_vars else "")
    result = subprocess.run(
        [sys.executable, "-I", "-c", prologue + textwrap.dedent(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]


def tiny_spatial_folder(folder: Path) -> Path:
    tiny_spatial_vae().save_pretrained(folder)
    return folder


@pytest.fixture
def hf_cache(tmp_path):
    return tmp_path / "hf-cache"


def dry_run_and_cache(folder: Path, repo_id: str, tmp_path: Path, cache: Path) -> Path:
    """``vae-hub push --dry-run`` of ``folder``, and the same files in the HF cache as ``repo_id``."""
    dry = tmp_path / "dry-run"
    names = hub.write_push_files(folder, repo_id, dry)
    populate_hf_cache(cache, repo_id, {name: dry / name for name in names})
    return dry


# ------------------------------------------------------------------------------------------------ the bundle
@pytest.mark.parametrize(
    "code",
    [
        lambda: remote_code.model_code("VAEModel"),
        lambda: remote_code.model_code("SpatialVAEModel"),
        lambda: remote_code.pipeline_code("LatentDiffusionPipeline"),
    ],
    ids=["VAEModel", "SpatialVAEModel", "LatentDiffusionPipeline"],
)
def test_bundles_need_only_installed_libraries(code, tmp_path):
    """diffusers' own scan finds no relative import to fetch and no import of vae_hub (strings included)."""
    path = tmp_path / "bundle.py"
    path.write_text(code())
    compile(path.read_text(), str(path), "exec")
    assert get_relative_imports(path) == []
    text = path.read_text()
    imports = re.findall(r"^\s*import\s+(\S+)\s*$", text, flags=re.M)  # diffusers' check_imports patterns
    imports += re.findall(r"^\s*from\s+(\S+)\s+import", text, flags=re.M)
    installed = {"torch", "diffusers", "huggingface_hub", *sys.stdlib_module_names}
    assert {name.split(".")[0] for name in imports} <= installed


@pytest.mark.parametrize("module", ["vae_hub.models.spatial_vae", "vae_hub.pipelines.latent_diffusion"])
def test_bundle_is_the_package_source(module):
    """Every definition of every module the class needs is in the bundle verbatim, in dependency order."""
    order = remote_code.dependency_order([module])
    assert order[-1] == module
    bundle = remote_code.bundle([module], "title")
    positions = []
    for name in order:
        source = remote_code.module_path(name).read_text()
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                segment = ast.get_source_segment(source, node, padded=True)
                assert segment in bundle, f"{name}.{node.name}"
                positions.append(bundle.index(segment))
    assert positions == sorted(positions)
    if module.endswith("spatial_vae"):
        assert order == [
            "vae_hub.likelihood",
            "vae_hub.loading",
            "vae_hub.models.blocks",
            "vae_hub.models.config_checks",
            "vae_hub.models.spatial_vae",
        ]  # not its sibling vae.py


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A package ``vae_hub`` of hand-written modules under ``tmp_path``, for the bundler's refusals."""
    package = tmp_path / "vae_hub"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.setattr(remote_code, "PACKAGE_DIR", package)
    return package


@pytest.mark.parametrize(
    "modules, message",
    [
        (
            {
                "a.py": "def _check():\n    pass\n",
                "b.py": "from .a import _check as check\n\ndef _check():\n    pass\n",
            },
            r"vae_hub.b and vae_hub.a both define `_check`",
        ),
        (
            {
                "a.py": "def double(x):\n    return 2 * x\n\ndef twice(x):\n    return x\n",
                "b.py": "from .a import double as twice\n",
            },
            r"vae_hub.b and vae_hub.a both define `twice`",
        ),
        ({"a.py": "import numpy as np\n", "b.py": "from .a import *\n"}, r"import \*` cannot be bundled"),
        ({"a.py": "X = 1\n", "b.py": "def f():\n    from .a import X\n    return X\n"}, "inside a function"),
        ({"b.py": "from vae_hub.a import X\n", "a.py": "X = 1\n"}, "imports vae_hub absolutely"),
        ({"a.py": "from .b import Y\nX = 1\n", "b.py": "from .a import X\nY = 2\n"}, "import cycle"),
    ],
)
def test_bundle_refuses_what_one_namespace_cannot_hold(fake_package, modules, message):
    for name, source in modules.items():
        (fake_package / name).write_text(source)
    with pytest.raises(remote_code.BundleError, match=message):
        remote_code.bundle(["vae_hub.b"], "title")


def test_bundle_binds_module_imports_and_aliases(fake_package):
    (fake_package / "a.py").write_text("def double(x):\n    return 2 * x\n")
    (fake_package / "b.py").write_text(
        "from . import a as amod\nfrom .a import double as twice\n\ndef f(x):\n    return amod.double(x) + twice(x)\n"
    )
    module = type(sys)("bundled_for_test")
    sys.modules["bundled_for_test"] = module
    try:
        exec(compile(remote_code.bundle(["vae_hub.b"], "title"), "bundle", "exec"), module.__dict__)
        assert module.f(3) == 12
    finally:
        del sys.modules["bundled_for_test"]


# ------------------------------------------------------------------------------------------------ models
@pytest.mark.parametrize("kind", ["VAEModel", "SpatialVAEModel"])
def test_model_loads_with_automodel_without_vae_hub(kind, tmp_path, hf_cache):
    """From the dry-run folder and by repo id from the HF cache: same class name, same outputs for the same seed."""
    make = (lambda f: tiny_model_folder(f, clutter=False)) if kind == "VAEModel" else tiny_spatial_folder
    folder = make(tmp_path / "model")
    dry = dry_run_and_cache(folder, MODEL_REPO, tmp_path, hf_cache)
    assert json.loads((dry / "config.json").read_text())["auto_map"] == {"AutoModel": f"modeling_vae_hub.{kind}"}
    cls = VAEModel if kind == "VAEModel" else SpatialVAEModel
    model = cls.from_pretrained(dry).eval()  # the package ignores auto_map
    x = torch.rand(3, 1, 12, 12, generator=torch.Generator().manual_seed(1)) * 2 - 1
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        expected = {
            "mean": model.encode(x).latent_dist.mean,
            "reconstruction": model(x, True, generator=torch.Generator().manual_seed(2)).sample,
        }
        if kind == "VAEModel":
            expected["samples"] = model.generate(4, generator=torch.Generator().manual_seed(3), prior="mixture")
    for source, env in ((str(dry), {}), (MODEL_REPO, {"HF_HUB_CACHE": str(hf_cache)})):
        run_without_vae_hub(
            f"""
            import torch
            from diffusers import AutoModel
            model = AutoModel.from_pretrained({source!r}, trust_remote_code=True)
            assert type(model).__name__ == {kind!r} and type(model).__module__.startswith("diffusers_modules")
            x = torch.load("x.pt")
            with torch.no_grad():
                out = {{"mean": model.encode(x).latent_dist.mean,
                       "reconstruction": model(x, True, generator=torch.Generator().manual_seed(2)).sample}}
                if {kind!r} == "VAEModel":
                    out["samples"] = model.generate(4, generator=torch.Generator().manual_seed(3), prior="mixture")
            torch.save(out, "remote.pt")
        """,
            tmp_path,
            **env,
        )
        got = torch.load(tmp_path / "remote.pt")
        assert got.keys() == expected.keys()
        for key in expected:
            assert torch.equal(got[key], expected[key]), (source, key)


def test_model_card_remote_snippet_runs_without_vae_hub(tmp_path, hf_cache):
    folder = tiny_model_folder(tmp_path / "model", clutter=False)
    dry_run_and_cache(folder, MODEL_REPO, tmp_path, hf_cache)
    _, remote = re.findall(r"```python\n(.*?)```", str(hub.build_card(folder, MODEL_REPO)), flags=re.S)
    run_without_vae_hub(
        remote + "assert model.generate(2).shape == (2, 1, 12, 12)\n", tmp_path, HF_HUB_CACHE=str(hf_cache)
    )


# ------------------------------------------------------------------------------------------------ pipelines
def test_pipeline_loads_with_diffusion_pipeline_without_vae_hub(tmp_path, hf_cache):
    """From the dry-run folder and by repo id from the HF cache (offline, no metadata call needed)."""
    folder = tiny_pipeline_folder(tmp_path / "pipe", clutter=False)
    dry = dry_run_and_cache(folder, PIPELINE_REPO, tmp_path, hf_cache)
    assert (dry / "vae" / "vae_hub.py").is_file() and (dry / "pipeline.py").is_file()
    expected = {}
    for where in (folder, dry):  # the package loads both the training output and what was pushed
        pipe = LatentDiffusionPipeline.from_pretrained(where)
        assert type(pipe.vae) is SpatialVAEModel
        pipe.set_progress_bar_config(disable=True)
        expected[where] = pipe(
            ["Sneaker", 0],
            num_images_per_class=2,
            num_inference_steps=4,
            guidance_scale=2.0,
            generator=torch.Generator().manual_seed(0),
            output_type="pt",
        ).images
    assert torch.equal(expected[folder], expected[dry])
    for source, env in ((str(dry), {}), (PIPELINE_REPO, {"HF_HUB_CACHE": str(hf_cache)})):
        run_without_vae_hub(
            f"""
            import torch
            from diffusers import DiffusionPipeline
            pipe = DiffusionPipeline.from_pretrained({source!r}, trust_remote_code=True)
            assert type(pipe).__name__ == "LatentDiffusionPipeline" and type(pipe.vae).__name__ == "SpatialVAEModel"
            assert pipe.class_names == {PIPELINE_CLASSES!r}
            pipe.set_progress_bar_config(disable=True)
            images = pipe(["Sneaker", 0], num_images_per_class=2, num_inference_steps=4, guidance_scale=2.0,
                          generator=torch.Generator().manual_seed(0), output_type="pt").images
            torch.save(images, "remote.pt")
        """,
            tmp_path,
            **env,
        )
        assert torch.equal(torch.load(tmp_path / "remote.pt"), expected[folder]), source


def test_a_pushed_pipelines_vae_loads_on_its_own_with_automodel_without_vae_hub(tmp_path, hf_cache):
    """Issue 29: ``AutoModel.from_pretrained(repo, subfolder="vae", trust_remote_code=True)``, as for a pushed VAE."""
    folder = tiny_pipeline_folder(tmp_path / "pipe", clutter=False)
    dry = dry_run_and_cache(folder, PIPELINE_REPO, tmp_path, hf_cache)
    assert json.loads((dry / "vae" / "config.json").read_text())["auto_map"] == {
        "AutoModel": "modeling_vae_hub.SpatialVAEModel"
    }
    x = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(1)) * 2 - 1
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        expected = SpatialVAEModel.from_pretrained(folder / "vae").eval().encode(x).latent_dist.mean
    run_without_vae_hub(
        f"""
        import torch
        from diffusers import AutoModel
        vae = AutoModel.from_pretrained({str(dry)!r}, subfolder="vae", trust_remote_code=True).eval()
        assert type(vae).__name__ == "SpatialVAEModel" and type(vae).__module__.startswith("diffusers_modules")
        with torch.no_grad():
            torch.save(vae.encode(torch.load("x.pt")).latent_dist.mean, "remote.pt")
    """,
        tmp_path,
    )
    assert torch.equal(torch.load(tmp_path / "remote.pt"), expected)


def test_pipeline_card_snippets_run_with_and_without_vae_hub(tmp_path, hf_cache, monkeypatch):
    """Both snippets, as pasted, from the HF cache: the same seed gives the same first image."""
    folder = tiny_pipeline_folder(tmp_path / "pipe", clutter=False)
    dry_run_and_cache(folder, PIPELINE_REPO, tmp_path, hf_cache)
    package, remote = re.findall(r"```python\n(.*?)```", str(hub.build_card(folder, PIPELINE_REPO)), flags=re.S)
    assert "vae_hub" not in remote and 'revision="main"' in remote
    run_without_vae_hub(remote + "images[0].save('remote.png')\n", tmp_path, HF_HUB_CACHE=str(hf_cache))

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_cache))
    monkeypatch.chdir(tmp_path)
    exec(compile(package, "pipeline-card-snippet", "exec"), {})
    assert (tmp_path / "sample.png").read_bytes() == (tmp_path / "remote.png").read_bytes()
