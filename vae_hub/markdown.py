"""Text that goes into a Markdown table cell (the Space's About tab, model cards).

A ``|`` inside a cell ends the cell and a newline ends the row, so a metric named "−log p(x | z)" or a dataset
folder with a pipe in its name would break the table; GitHub-flavoured Markdown (the Hub's and Gradio's
renderers) reads an escaped ``\\|`` as a literal pipe, also inside code spans.
"""


def table_cell(value) -> str:
    """``value`` as text that stays in one Markdown table cell: pipes escaped, line breaks made spaces."""
    return " ".join(str(value).split()).replace("|", "\\|")


def table_row(*cells) -> str:
    """One Markdown table row of ``cells``, each escaped with ``table_cell``."""
    return "| " + " | ".join(table_cell(c) for c in cells) + " |"
