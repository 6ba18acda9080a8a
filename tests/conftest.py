"""Test-wide settings: no network, no analytics, small thread count, the repo importable without installing."""

import os
import sys
from pathlib import Path


os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402


torch.set_num_threads(1)  # tiny test models: one thread is faster than two oversubscribed ones

pytest_plugins = ["hub_doubles"]  # its fixtures (a saved tiny model folder) serve the hub and CLI tests
