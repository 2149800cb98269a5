"""Where the worker writes a video's manifest: the recovery function writes error manifests there.

The worker's own rule is container/thumbnailer/naming.py; tests/unit/test_job_contract.py checks
that both give the same key (docs/contract.md "Output naming").
"""

from __future__ import annotations


def manifest_key(key: str, video_prefix: str, output_prefix: str) -> str:
    """`videos/<rest>` -> `thumbnails/<rest>.json` (a key outside the prefix keeps its whole name)."""
    rest = key[len(video_prefix) :] if video_prefix and key.startswith(video_prefix) else key
    return f"{output_prefix}{rest}.json"
