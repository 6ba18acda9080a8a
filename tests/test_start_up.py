"""``--help`` and a usage error of every command line come back before torch and the other heavy libraries are
imported (issue 29 item 15). Each runs in a fresh interpreter, as its entry point does, which then names the heavy
packages it imported."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
TRAINING = REPO / "training"
HEAVY = ("torch", "diffusers", "transformers", "accelerate", "datasets", "gradio")
# argv[1]: a script's path or a module's name; the heavy packages imported come last on stdout, however it exits
PROBE = f"""import json, runpy, sys
target = sys.argv.pop(1)
try:
    if target.endswith(".py"):
        runpy.run_path(target, run_name="__main__")
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
finally:
    print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}} & set({HEAVY!r}))))
"""
# what each training script needs before its own checks of the values run
DATA = ["--dataset_name", "data", "--output_dir", "out"]
VAE = ["--pretrained_vae_model_name_or_path", "vae"]
REQUIRED = {
    "train_vae.py": DATA,
    "train_latent_diffusion.py": [*DATA, *VAE],
    "train_text_to_image.py": [*DATA, *VAE],
    "train_clip.py": DATA,
    "train_classifier.py": DATA,
}
CASES = {  # (entry point, arguments, exit status, what it prints)
    "vae-hub --help": ("vae_hub.cli", ["--help"], 0, "usage: vae-hub"),
    "vae-hub push usage error": ("vae_hub.cli", ["push", "folder"], 2, "arguments are required: --repo-id"),
    **{f"{script} --help": (str(TRAINING / script), ["--help"], 0, "usage:") for script in REQUIRED},
    **{
        f"{script} flag error": (
            str(TRAINING / script),
            [*required, "--learning_rate", "2"],
            2,
            "--learning_rate must be in (0, 1], got 2.0",
        )
        for script, required in REQUIRED.items()
    },
}


@pytest.mark.parametrize("case", CASES)
def test_help_and_usage_errors_import_no_heavy_library(case, tmp_path):
    target, args, status, shown = CASES[case]
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, target, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": python_path},
        timeout=120,
    )
    *printed, heavy = done.stdout.splitlines()
    assert done.returncode == status and shown in "\n".join(printed) + done.stderr, done.stderr[-2000:]
    assert json.loads(heavy) == []
