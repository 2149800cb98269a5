"""A generated block of a Markdown file, between an opening and a closing comment marker
(`<!-- name:begin -->` ... `<!-- name:end -->`; the storyboard's opens with `:start`).

Each benchmark writes its own block and leaves the rest of the file as it found it.
"""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_block(path: Path, block: str, begin: str, end: str) -> None:
    """Put `block` (which opens with `begin` and closes with `end`) where the file has those markers,
    or at its end when it has none yet."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block.rstrip("\n") + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block.rstrip("\n") + "\n"
    path.write_text(text, encoding="utf-8")


def replace_section(path: Path, name: str, body: str) -> None:
    """Put `body` between the file's markers for `name` (appended with them when missing)."""
    begin, end = markers(name)
    replace_block(path, f"{begin}\n{body.rstrip()}\n{end}", begin, end)
