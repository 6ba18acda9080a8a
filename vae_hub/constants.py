"""Constants the command lines need for their flags (choices, defaults, help), in a module without heavy imports:
``--help`` and a usage error must not wait for torch. Each belongs to the module named beside it, which imports it
from here."""

from pathlib import Path


AUTO = "auto"  # vae_hub.prior: --prior_components auto, K chosen by the held-out log-likelihood of the codes
MIN_VOCAB_SIZE = 2 * 256 + 2  # vae_hub.text_tokenizer: the bytes, alone and word-final, and bos and eos
NUM_CANDIDATES = 32  # vae_hub.text_image_metrics: the own caption and 31 rivals, as AttnGAN's R-precision
SPACE_DIR = Path(__file__).resolve().parents[1] / "space"  # vae_hub.hub: the project's Space, next to the package
