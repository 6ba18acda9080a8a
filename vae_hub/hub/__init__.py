"""Publishing to the Hugging Face Hub: model cards, push, Space deploy (the loading checks are ``vae_hub.loading``).

* ``build_card`` / ``write_model_card``: the card of a saved model or pipeline folder (metadata the Hub indexes, a
  body that reads well and a snippet that runs), from a template per kind in ``vae_hub/templates/``
  (``model_card``, ``pipeline_card``; the shared pieces in ``cards``).
* ``upload_file_list`` / ``push_to_hub``: one explicit commit of the files a user needs — never checkpoints,
  logs, optimizer state or anything holding a token (``files``, ``push``).
* ``space_upload_files`` / ``deploy_space``: a self-contained Gradio Space (app, ``vae_hub`` source, models, and
  ``space_config.json`` naming the Hub model to load, if any) (``space``).

Every Hub call goes through an injectable ``HfApi`` (tests pass a test double), takes the token explicitly, and
turns the Hub's failures into one ``HubError`` whose message says what happened and what to do. Only publishing
code and the command line import this package (``tests/test_imports.py``).
"""

from ..constants import SPACE_DIR
from ..description import METRICS_NAME, TRAINING_INFO_NAME
from ..loading import MAP_SAMPLE_NAME
from ..records import public_name, public_record, shareable_command
from .cards import CARD_NAME, FIGURE_CAPTIONS, LICENSE, PROJECT_TAG
from .files import PIPELINE_CLASS, check_pipeline_folder, pipeline_code_files, upload_file_list
from .model_card import build_card, build_model_card, write_model_card
from .pipeline_card import build_pipeline_card, record_comparison
from .push import HubError, push_files, push_to_hub, resolve_token, write_push_files
from .space import SPACE_CONFIG_NAME, deploy_space, space_upload_files


__all__ = [
    "CARD_NAME",
    "FIGURE_CAPTIONS",
    "LICENSE",
    "MAP_SAMPLE_NAME",
    "METRICS_NAME",
    "PIPELINE_CLASS",
    "PROJECT_TAG",
    "SPACE_CONFIG_NAME",
    "SPACE_DIR",
    "TRAINING_INFO_NAME",
    "HubError",
    "build_card",
    "build_model_card",
    "build_pipeline_card",
    "check_pipeline_folder",
    "deploy_space",
    "pipeline_code_files",
    "public_name",
    "public_record",
    "push_files",
    "push_to_hub",
    "record_comparison",
    "resolve_token",
    "shareable_command",
    "space_upload_files",
    "upload_file_list",
    "write_model_card",
    "write_push_files",
]
