"""The credits a model's training data asks for, read from the run's record or from the dataset's README.

training_data_credits(info, readme)   what the run recorded (``--dataset_credit`` and the dataset card's licence,
                                      ``vae_hub.data.data_credits``), else ``readme_credits(readme)``
readme_credits(readme)                the sources and licences a dataset README's licence section lists
dataset_readme(name)                  the README of a dataset folder (or a reachable Hub dataset)
"""

import re
from pathlib import Path

from .data import data_credits as recorded_credits


LICENCE_NAMES = {"apache license 2.0": "Apache-2.0", "apache license, version 2.0": "Apache-2.0", "mit license": "MIT"}
_HEADING = re.compile(r"^(#+)\s+(.*)$")
_QUOTED_CREDIT = re.compile(r'credit\s+"([^"]+)"', re.IGNORECASE)
_SOURCE_LICENCE = re.compile(r"^[-*]\s+([^:©*]+?):.*?\*\*([^*]+)\*\*")  # "- Twemoji graphics: © ..., **CC-BY 4.0**"


def licence_section(readme: str) -> str | None:
    """The section of a dataset README whose heading mentions licences (to the next heading of its level or above)."""
    lines, start, level = readme.splitlines(), None, 0
    for i, line in enumerate(lines):
        match = _HEADING.match(line)
        if match and start is None and re.search(r"licen[cs]", match.group(2), re.IGNORECASE):
            start, level = i + 1, len(match.group(1))
        elif match and start is not None and len(match.group(1)) <= level:
            return "\n".join(lines[start:i]).strip() or None
    return "\n".join(lines[start:]).strip() or None if start is not None else None


def readme_credits(readme: str) -> list[str]:
    """The credits a dataset README asks for, as "Source (licence)": each source listed with a bold licence in its
    licence section ("- Noto Emoji graphics: © Google, **Apache License 2.0**" → "Noto (Apache-2.0)"), and each credit
    it quotes ('must credit "Twemoji (CC-BY 4.0)"').
    """
    section = licence_section(readme) or ""
    credits = []
    for line in section.splitlines():
        match = _SOURCE_LICENCE.match(line.strip())
        if match:
            source, licence = match.group(1).split()[0], match.group(2).strip()
            credits.append(f"{source} ({LICENCE_NAMES.get(licence.lower(), licence)})")
    credits += _QUOTED_CREDIT.findall(section)
    return list(dict.fromkeys(credits))


def training_data_credits(info: dict, readme: str | None) -> list[str]:
    """The credits of a run's training data: what the run recorded (``--dataset_credit``, the dataset card's licence),
    else what the dataset's README asks for (``readme_credits``)."""
    recorded = recorded_credits(info)
    return [recorded] if recorded else readme_credits(readme) if readme else []


def dataset_licence_section(dataset_name: str | None) -> str | None:
    """What the dataset's README says about its sources and licences (``licence_section``), for the run's record."""
    readme = dataset_readme(dataset_name)
    return licence_section(readme) if readme else None


def dataset_readme(dataset_name: str | None) -> str | None:
    """The README of a dataset folder (or of a Hub dataset, when the Hub can be reached), or None."""
    if not dataset_name:
        return None
    path = Path(dataset_name) / "README.md"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(dataset_name, "README.md", repo_type="dataset")).read_text(encoding="utf-8")
    except Exception:  # offline, not a Hub id, no README: the card then says the licence was not found
        return None
