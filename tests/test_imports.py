"""Which of vae_hub's modules import the publishing module ``vae_hub.hub``: publishing code and the CLI only.

Loading a model (``vae_hub.loading``) and the Space (``vae_hub.space_models``, ``vae_hub.explore``) read the names
of a saved folder's files from ``vae_hub.loading``; the model cards, push and Space deploy stay out of their way.
"""

import ast
from pathlib import Path

import vae_hub


PACKAGE = Path(vae_hub.__file__).parent
HUB = "vae_hub.hub"
# Publishing code (the card modules) and the command line: the only modules that may import vae_hub.hub, besides
# its own modules (vae_hub.hub.*).
HUB_IMPORTERS = {"vae_hub.autoencoder_kl_card", "vae_hub.cli", "vae_hub.text_to_image_card"}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = PACKAGE) -> set[str]:
    """The absolute names a file of the package at ``root`` imports, wherever in it (a function's body too): for
    ``from x import y``, both ``x`` and ``x.y`` (``from . import hub`` imports ``vae_hub.hub``)."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_imported_modules_resolves_relative_imports(tmp_path):
    root = tmp_path / "vae_hub"
    (root / "explore").mkdir(parents=True)
    files = {
        "explore/kinds.py": "from ..hub import X\n",
        "explore/__init__.py": "from .. import hub\n",
        "cli.py": "def main():\n    from . import hub\n",
        "other.py": "import vae_hub.hub\n",
        "hubs.py": "from .hubs2 import hub\nfrom .explore import hub as h\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    seen = {name: HUB in imported_modules(root / name, root) for name in files}
    assert seen == {
        "explore/kinds.py": True,
        "explore/__init__.py": True,
        "cli.py": True,
        "other.py": True,
        "hubs.py": False,
    }
    assert module_name(root / "explore/__init__.py", root) == "vae_hub.explore"


def test_only_publishing_code_and_the_cli_import_hub():
    importers = {
        module_name(p)
        for p in PACKAGE.rglob("*.py")
        if HUB in imported_modules(p) and not module_name(p).startswith(HUB)
    }
    assert "vae_hub.cli" in importers  # the scan sees imports at all
    assert importers <= HUB_IMPORTERS, f"only publishing code and the CLI import {HUB}: {importers - HUB_IMPORTERS}"
