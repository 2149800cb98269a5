"""Which S3 keys the stack reacts to, read from template.yaml's own notification filters.

S3 notifies the launcher only for keys that match one of the bucket's notification filters
(prefix and suffix, both case-sensitive). Any other upload is silently ignored: no event, no
task, no thumbnail. The demo checks its key here first, so that a key the stack would ignore
fails at once with a key that works, instead of waiting for a thumbnail that never comes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from local_stack import template
from local_stack.deploy import TEMPLATE_PATH

# Containers of the MP4 family (ISO base media): the worker reads them whatever their name.
MP4_FAMILY = {".mp4", ".m4v", ".mov", ".3gp"}


@dataclass(frozen=True)
class KeyFilter:
    """One notification filter: a key must start with `prefix` and end with `suffix`."""

    prefix: str = ""
    suffix: str = ""

    def matches(self, key: str) -> bool:
        return key.startswith(self.prefix) and key.endswith(self.suffix)


def notification_filters(template_path: Path = TEMPLATE_PATH) -> tuple[KeyFilter, ...]:
    """The key filters of every bucket notification in the SAM-transformed template."""
    transformed = template.transform(template.load_template(template_path))
    return filters_of(transformed)


def filters_of(transformed: Mapping[str, Any]) -> tuple[KeyFilter, ...]:
    found: list[KeyFilter] = []
    for resource in transformed.get("Resources", {}).values():
        if resource.get("Type") != "AWS::S3::Bucket":
            continue
        notification = resource.get("Properties", {}).get("NotificationConfiguration") or {}
        for configuration in notification.get("LambdaConfigurations", []):
            rules = configuration.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            values = {str(rule["Name"]).lower(): rule["Value"] for rule in rules}
            prefix, suffix = values.get("prefix", ""), values.get("suffix", "")
            if isinstance(prefix, str) and isinstance(suffix, str):
                found.append(KeyFilter(prefix, suffix))
    return tuple(dict.fromkeys(found))  # in template order, once each


def describe(filters: Sequence[KeyFilter]) -> str:
    """`videos/` plus `.mp4` or `.MP4`, in words."""
    prefixes = list(dict.fromkeys(f.prefix for f in filters))
    suffixes = list(dict.fromkeys(f.suffix for f in filters))
    if len(prefixes) == 1:
        where = f"under {prefixes[0]!r}" if prefixes[0] else "anywhere"
        ending = " or ".join(repr(s) for s in suffixes if s)
        return f"keys {where}" + (f" ending in {ending}" if ending else "")
    return " or ".join(f"keys starting with {f.prefix!r} and ending with {f.suffix!r}" for f in filters)


def suggest(key: str, filters: Sequence[KeyFilter]) -> str:
    """A key like `key` that the first filter matches: its prefix, and the suffix it spells."""
    wanted = filters[0]
    rest = next((key[len(f.prefix) :] for f in filters if f.prefix and key.startswith(f.prefix)), key)
    path = PurePosixPath(rest.lstrip("/") or "video")
    if path.suffix.lower() in MP4_FAMILY | {f.suffix.lower() for f in filters}:
        path = path.with_suffix("")
    return f"{wanted.prefix}{path.as_posix()}{wanted.suffix}"


def default_key(video: Path, filters: Sequence[KeyFilter]) -> str:
    """videos/<file name>, or for another MP4-family name (clip.mov), videos/clip.mp4."""
    key = f"{filters[0].prefix}{video.name}" if filters else video.name
    return key if matched(key, filters) else suggest(video.name, filters)


def matched(key: str, filters: Iterable[KeyFilter]) -> bool:
    return any(f.matches(key) for f in filters)


def check(key: str, filters: Sequence[KeyFilter]) -> str | None:
    """None when S3 would notify the launcher for `key`; otherwise why not, and a key that works."""
    if not filters or matched(key, filters):
        return None
    note, suffix = "", PurePosixPath(key).suffix
    if suffix.lower() in MP4_FAMILY - {".mp4"}:
        note = f" ({suffix} is an MP4-family container: the worker reads it under that name)"
    return (
        f"the stack ignores the key {key!r}: S3 notifies the launcher only for "
        f"{describe(filters)} (template.yaml's notification filters; S3 compares them "
        f"case-sensitively). Use a key such as {suggest(key, filters)!r}{note}"
    )
