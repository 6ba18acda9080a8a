"""The ``vae-hub`` command line: a small dispatcher over subcommands.

    vae-hub push OUTPUT_DIR --repo-id ORG/NAME [--private] [--revision BRANCH] [--dry-run OUT_DIR]
    vae-hub deploy-space --space-id ORG/NAME [--model-id ORG/MODEL] [--private]
    vae-hub card OUTPUT_DIR [--repo-id ORG/NAME] [--dataset-id ORG/DATASET] [--compare FOLDER ...]
    vae-hub prior OUTPUT_DIR --dataset-name DATASET [--components auto] [--max-codes 20000] [--seed 0]

The token comes from ``--token``, else ``HF_TOKEN``, else the login cache (``hf auth login``); it is never
printed. A failure prints one line, ``vae-hub <command>: error: <what happened and what to do>``, and exits 1.

To add a subcommand, write ``add_<name>(parser)`` and ``run_<name>(args)`` and list them in ``COMMANDS``. ``run``
gets the parsed arguments plus ``args.api``: the ``HfApi`` to use (``None``: a real one; tests pass a double). It
imports ``hub`` and anything else that loads torch itself: ``--help`` and a usage error need none of them.
"""

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from huggingface_hub import HfApi

from .constants import SPACE_DIR


class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]


def _add_token(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token",
        "--hub_token",
        dest="token",
        default=None,
        help="Hugging Face token with write access. Default: HF_TOKEN, then the login cache "
        "(`hf auth login`) — prefer those: a token typed here lands in your shell history.",
    )


def add_push(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output_dir", help="A saved model or pipeline folder (training's --output_dir).")
    parser.add_argument("--repo-id", required=True, help="The model repo, ORG/NAME; created if missing.")
    parser.add_argument(
        "--private",
        action="store_true",
        help="Create the repo private; refuse to upload into an existing public repo.",
    )
    parser.add_argument("--revision", default=None, help="Branch to commit to (created from main if missing).")
    parser.add_argument("--commit-message", default=None)
    parser.add_argument(
        "--dry-run",
        metavar="OUT_DIR",
        default=None,
        help="Upload nothing: write into OUT_DIR (new or empty) exactly the files the commit would "
        "upload, to review them or load from them. Needs no token.",
    )
    _add_token(parser)


def run_push(args: argparse.Namespace) -> None:
    from . import hub

    if args.dry_run:
        names = hub.write_push_files(args.output_dir, args.repo_id, args.dry_run)
        print(
            f"Dry run: wrote the {len(names)} files a push of {args.output_dir} to {args.repo_id} would upload "
            f"into {args.dry_run} (nothing was uploaded):\n" + "\n".join(f"  {name}" for name in names)
        )
        return
    url = hub.push_to_hub(
        args.output_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        token=args.token,
        commit_message=args.commit_message,
        api=args.api,
    )
    print(f"Pushed {args.output_dir} to https://huggingface.co/{args.repo_id}\ncommit: {url}")


def add_deploy_space(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space-id", required=True, help="The Space, ORG/NAME; created (Gradio SDK) if missing.")
    parser.add_argument(
        "--model-id",
        default=None,
        help="Make the Space load this Hub model instead of shipping the models under space/models.",
    )
    parser.add_argument(
        "--private",
        action="store_true",
        help="Create the Space private; refuse to upload into an existing public Space.",
    )
    parser.add_argument("--space-dir", default=None, help=f"The Space's source folder (default: {SPACE_DIR}).")
    _add_token(parser)


def run_deploy_space(args: argparse.Namespace) -> None:
    from . import hub

    url = hub.deploy_space(
        args.space_id,
        model_id=args.model_id,
        private=args.private,
        token=args.token,
        api=args.api,
        space_dir=args.space_dir,
    )
    print(
        f"Deployed https://huggingface.co/spaces/{args.space_id} "
        f"({'loads ' + args.model_id if args.model_id else 'with its shipped models'})\ncommit: {url}"
    )


def add_card(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output_dir", help="A saved model or pipeline folder; its README.md is (re)written.")
    parser.add_argument(
        "--repo-id", default=None, help="The Hub id the card's snippets load (default: a placeholder)."
    )
    parser.add_argument(
        "--dataset-id", default=None, help="Hub id of the training data, when training read a local copy of it."
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        default=None,
        metavar="FOLDER",
        help="Other generators (saved model or pipeline folders) whose sample-quality records join "
        "the card's table; kept in metrics.json (compared_with), so a push shows them too.",
    )


def run_card(args: argparse.Namespace) -> None:
    from . import hub

    if args.compare:
        hub.record_comparison(args.output_dir, args.compare)
    hub.write_model_card(args.output_dir, args.repo_id, dataset_id=args.dataset_id)
    print(f"Wrote {args.output_dir.rstrip('/')}/{hub.CARD_NAME}")


def add_prior(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "output_dir",
        help="A saved model folder; its weights, config, training_info.json and card "
        "are updated, its other files kept.",
    )
    parser.add_argument("--dataset-name", required=True, help="The training data: Hub dataset id or local folder.")
    parser.add_argument("--split", default="train")
    parser.add_argument(
        "--components",
        default="auto",
        help="auto (chosen by the held-out log-likelihood of the codes) or a number of components",
    )
    parser.add_argument(
        "--max-codes", type=int, default=20_000, help="encode at most this many images, picked with --seed"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--dataset-id", default=None, help="Hub id of the data for the card, when it reads a local copy."
    )
    parser.add_argument("--cache-dir", default=None, help="datasets' cache folder")


def run_prior(args: argparse.Namespace) -> None:
    """Refit a saved model's mixture prior on its training codes, as the training script does at its end."""
    import torch

    from . import hub
    from .data import load_split
    from .latent import encode_images
    from .models import VAEModel
    from .prior import AUTO, fit_mixture_prior

    components = args.components if args.components == AUTO else int(args.components)
    folder = Path(args.output_dir)
    model = VAEModel.from_pretrained(folder).eval()
    data = load_split(
        args.dataset_name,
        args.split,
        resolution=model.config.sample_size,
        channels=model.config.in_channels,
        cache_dir=args.cache_dir,
    )
    picked = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(args.seed))[: args.max_codes]
    choice = fit_mixture_prior(model, encode_images(model, data.images[picked]), components, seed=args.seed)
    model.save_pretrained(folder)
    info_path = folder / hub.TRAINING_INFO_NAME
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    command = [
        "vae-hub",
        "prior",
        args.output_dir,
        "--dataset-name",
        args.dataset_name,
        "--split",
        args.split,
        "--components",
        args.components,
        "--max-codes",
        str(args.max_codes),
        "--seed",
        str(args.seed),
    ]
    info["mixture_prior"] = {**choice.to_dict(), "command": shlex.join(command)}
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    hub.write_model_card(folder, dataset_id=args.dataset_id)
    print(choice.describe())
    print(f"Saved the {choice.num_components}-component mixture prior to {folder}")


COMMANDS: dict[str, Command] = {
    "push": Command("Upload a saved model or pipeline folder to the Hub in one commit.", add_push, run_push),
    "deploy-space": Command(
        "Upload the Gradio Space (app, vae_hub source, models).", add_deploy_space, run_deploy_space
    ),
    "card": Command(
        "Write or refresh the model card (README.md) of a saved model or pipeline folder.", add_card, run_card
    ),
    "prior": Command("Refit the mixture prior of a saved model folder on its training codes.", add_prior, run_prior),
}


def build_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False on every parser: "--tok" must not silently mean --token
    parser = argparse.ArgumentParser(
        prog="vae-hub", description="Publish vae-hub models and the Space.", allow_abbrev=False
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.add_arguments(
            subparsers.add_parser(name, help=command.help, description=command.help, allow_abbrev=False)
        )
    return parser


def main(argv: list[str] | None = None, *, api: HfApi | None = None) -> int:
    """Run ``vae-hub`` with ``argv`` (default: ``sys.argv[1:]``); the exit status: 0, 1 on error, 2 on bad usage."""
    args = build_parser().parse_args(argv)
    args.api = api
    from . import hub  # for its error type; after parsing, as in each run_*

    try:
        COMMANDS[args.command].run(args)
    except (hub.HubError, OSError, ValueError) as err:  # the messages name the problem; a traceback adds nothing
        print(f"vae-hub {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
