"""Classify S3's errors on the source into the worker's error family (not found, unreadable, changed)."""

from __future__ import annotations

from typing import NoReturn

from botocore.exceptions import ClientError

from thumbnailer.errors import SourceChangedError, SourceNotFoundError, SourceUnreadableError

# Codes S3 (and moto) answer for a missing key or version, and for a read that is not allowed.
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NotFound", "404"})
_FORBIDDEN_CODES = frozenset({"AccessDenied", "Forbidden", "403"})
_BAD_VERSION_CODES = frozenset({"400", "InvalidArgument", "BadRequest"})


def describe(bucket: str, key: str, version_id: str | None) -> str:
    """The source as error messages name it."""
    return f"s3://{bucket}/{key}" + (f" (version {version_id})" if version_id else "")


def classify(error: ClientError, bucket: str, key: str, version_id: str | None) -> Exception:
    """Map an S3 error on the source to SourceNotFoundError/SourceUnreadableError; anything else unchanged."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    where = describe(bucket, key, version_id)
    classified: Exception = error
    # Specific codes first: S3 sends InvalidObjectState with a 403, PreconditionFailed with a 412.
    if code == "NoSuchBucket":
        classified = SourceNotFoundError(f"bucket {bucket!r} does not exist, reading {where}")
    elif code == "PreconditionFailed" or status == 412:
        classified = SourceChangedError(f"{where} was overwritten while being read (its ETag changed)")
    elif code == "InvalidObjectState":
        classified = SourceUnreadableError(f"{where} is archived and must be restored before it can be read")
    elif code == "InvalidRange":
        classified = SourceUnreadableError(f"{where}: range not satisfiable ({error})")
    elif code in _NOT_FOUND_CODES or status == 404:
        classified = SourceNotFoundError(f"{where} does not exist ({code})")
    elif code in _FORBIDDEN_CODES or status == 403:
        # Without s3:ListBucket, S3 answers 403 for a missing key too.
        classified = SourceNotFoundError(f"{where} cannot be read: access denied (or it does not exist)")
    elif status == 400 and version_id and code in _BAD_VERSION_CODES:
        classified = SourceNotFoundError(f"{where}: invalid version id ({code})")
    return classified


def raise_classified(error: ClientError, bucket: str, key: str, version_id: str | None) -> NoReturn:
    """Raise the classified error (chained to S3's), or S3's own when it says nothing about the source."""
    classified = classify(error, bucket, key, version_id)
    if classified is error:
        raise error
    raise classified from error
