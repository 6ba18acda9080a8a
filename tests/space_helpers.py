"""Tiny models and Space folders made in the test, shared by the Space's test modules (no shared dataset)."""

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vae_hub import VAEModel


REPO = Path(__file__).resolve().parents[1]
SPACE = REPO / "space"


def load_app(path: Path = SPACE / "app.py"):
    """``space/app.py`` (or a copy of it) imported as a module, without starting the server."""
    spec = importlib.util.spec_from_file_location("space_app", path)
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    return app


def make_model(
    path: Path,
    latent_dim: int = 4,
    size: int = 28,
    channels: int = 1,
    mixture: bool = True,
    seed: int = 0,
    likelihood: str = "bernoulli",
    map_sample: bool = True,
    dataset: str = "made-up",
    code_scale: float = 1.0,
) -> Path:
    """Save a small random ``VAEModel`` (with a 3-component mixture prior if ``mixture``) plus an About's files and
    (if ``map_sample``) its own latent-map sample, in its format. ``code_scale`` > 1 spreads its posterior means,
    so that (unlike a fresh model's) its dimensions carry information (KL) and the Space shows several sliders."""
    torch.manual_seed(seed)
    model = VAEModel(
        in_channels=channels,
        sample_size=size,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        latent_dim=latent_dim,
        likelihood=likelihood,
    )
    with torch.no_grad():
        model.encoder.to_moments.weight[:latent_dim] *= code_scale
    if mixture:
        g = torch.Generator().manual_seed(seed)
        model.set_mixture_prior(
            torch.randn(3, latent_dim, generator=g),
            torch.full((3, latent_dim), -1.0),
            torch.log(torch.tensor([0.2, 0.3, 0.5])),
        )
    model.save_pretrained(path)
    if map_sample:
        make_map_sample(path / "latent_map_sample.npz", size=size, channels=channels)
    (path / "metrics.json").write_text(
        json.dumps(
            {
                "dataset": dataset,
                "split": "test",
                "num_images": 3,
                "negative_elbo_nats": 123.456,
                "reconstruction_nats": 100.0,
                "kl_nats": 23.456,
                "active_units": latent_dim,
            }
        )
    )
    (path / "README.md").write_text(
        "---\nlicense: apache-2.0\n---\n# A tiny test model\n\nMade in a test.\n\n"
        "![samples](samples.png) ![web](https://example.org/a.png)\n"
    )
    return path


def make_coloured_model(path: Path, latent_dim: int = 3) -> Path:
    """A tiny RGB 48×48 model "trained on coloured shapes": its own labelled sample, its dataset in its records."""
    folder = make_model(
        path,
        latent_dim=latent_dim,
        size=48,
        channels=3,
        mixture=False,
        dataset="someone/coloured-shapes",
        code_scale=30.0,
    )
    make_map_sample(
        folder / "latent_map_sample.npz",
        n=30,
        size=48,
        channels=3,
        class_names=["red circle", "green square", "blue triangle"],
        source="coloured-shapes test split",
    )
    return folder


def make_map_sample(
    path: Path,
    n: int = 60,
    size: int = 28,
    classes: int = 3,
    seed: int = 0,
    channels: int = 1,
    class_names: list[str] | None = None,
    source: str = "made in a test",
) -> Path:
    """A labelled sample file in the layout of a model's ``latent_map_sample.npz`` (``vae_hub.explore.MapSample``)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.integers(0, 60, (n, channels, size, size), dtype=np.uint8)
    for k in range(classes):  # each class a bright band somewhere else (in another colour), so the classes differ
        images[labels == k, k % channels, 4 * k : 4 * k + 6, :] += 180
    names = class_names or [f"class {k}" for k in range(classes)]
    np.savez_compressed(path, images=images, labels=labels, class_names=np.array(names), source=np.array(source))
    return path


def shipped_models() -> list[str]:
    """Names of the trained VAEs shipped in ``space/models`` (empty until they are trained; not the classifier)."""
    return sorted(
        p.name
        for p in (SPACE / "models").glob("*")
        if (p / "config.json").is_file()
        and json.loads((p / "config.json").read_text()).get("_class_name") == "VAEModel"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningSpace:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (Linux ``/proc``)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@contextlib.contextmanager
def running_space(model_ids: list[str], log_path: Path, startup_timeout: float | None = None):
    """Run ``python space/app.py`` on a free loopback port with ``VAE_MODEL`` = ``model_ids``; yield a
    ``RunningSpace`` (its URL and process id).

    The Hub is made unreachable (``HF_HUB_OFFLINE``) so a bad repo id fails at once. The wait for startup
    is bounded so a broken app fails the test instead of hanging it (300 s, or ``VAE_HUB_TEST_SPACE_STARTUP_S`` on
    a busy machine); the server is stopped afterwards (SIGTERM).
    """
    startup_timeout = startup_timeout or float(os.environ.get("VAE_HUB_TEST_SPACE_STARTUP_S", 300))
    port = free_port()
    env = {
        **os.environ,
        "VAE_MODEL": ",".join(model_ids),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
    }
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, str(SPACE / "app.py")], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"the Space exited with code {proc.returncode}:\n{log_path.read_text()[-3000:]}"
                    )
                try:
                    with urllib.request.urlopen(url, timeout=5) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the Space did not start in {startup_timeout:.0f} s:\n{log_path.read_text()[-3000:]}"
                    )
                time.sleep(0.5)
            yield RunningSpace(url, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def select_tab(page, name: str, tries: int = 3) -> None:
    """Open the top-level tab ``name`` and wait until it is the selected one. Right after a model is chosen, the
    tab bar is drawn again as tabs show and hide (Gradio reuses its buttons for other labels), so a click made as
    it redraws can land on the neighbouring tab: the server then hears that tab opened. Such a click is made again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(tries):
        page.get_by_role("tab", name=name, exact=True).locator("visible=true").first.click()
        try:
            page.wait_for_function(
                "n => [...document.querySelectorAll('[role=tab]')].some("
                "t => t.innerText.trim() === n && t.getAttribute('aria-selected') === 'true')",
                arg=name,
                timeout=5_000,
            )
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"the tab {name!r} did not open after {tries} clicks")
