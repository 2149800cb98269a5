"""Time specs, formats and widths: what is accepted, and bad values rejected naming themselves."""

from __future__ import annotations

import pytest

from thumbnailer.errors import EXIT_INVALID_OPTIONS, InvalidOptionsError
from thumbnailer.options import (
    AUTO,
    Options,
    TimeSpec,
    from_environment,
    parse_time_spec,
    parse_widths,
    with_metadata,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("92", TimeSpec("seconds", 92)),
        ("92.5", TimeSpec("seconds", 92.5)),
        ("0", TimeSpec("seconds", 0)),
        ("01:32", TimeSpec("seconds", 92)),
        ("00:01:32.5", TimeSpec("seconds", 92.5)),
        ("1:00:00", TimeSpec("seconds", 3600)),
        ("25%", TimeSpec("percent", 25)),
        ("0%", TimeSpec("percent", 0)),
        ("100%", TimeSpec("percent", 100)),
        (" AUTO ", AUTO),
    ],
)
def test_valid_time_specs(raw: str, expected: TimeSpec) -> None:
    assert parse_time_spec(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        *("-1", "-0.5", "abc", "", "101%", "-5%", "1:60", "00:61:00", "1e3", "nan", "inf", "12s"),
        *("1:2:3:4", "%", "١٢", "1:٣٠", "9" * 400, "9" * 5000 + ":00:00"),
    ],
)
def test_invalid_time_specs_name_the_value(raw: str) -> None:
    with pytest.raises(InvalidOptionsError) as caught:
        parse_time_spec(raw, "metadata thumbnail-at")
    assert repr(raw) in caught.value.message
    assert "metadata thumbnail-at" in caught.value.message
    assert caught.value.exit_code == EXIT_INVALID_OPTIONS


def test_widths_are_sorted_deduplicated_and_bounded() -> None:
    assert parse_widths("640, 320,640") == (320, 640)
    assert parse_widths("") == ()
    # "²" and "٣" pass str.isdigit() but are not whole pixels written in ASCII.
    for bad in ("0", "-5", "abc", "99999", "1.5", "²", "٣٢٠", "+320", "9" * 5000):
        with pytest.raises(InvalidOptionsError) as caught:
            parse_widths(bad)
        assert repr(bad) in caught.value.message
    with pytest.raises(InvalidOptionsError, match="at most"):
        parse_widths(",".join(str(w) for w in range(100, 1100, 100)))


def test_layers_environment_then_metadata() -> None:
    defaults = from_environment({"THUMBNAIL_AT": "10", "THUMBNAIL_FORMAT": "png", "THUMBNAIL_WIDTHS": ""})
    assert defaults == Options(at=TimeSpec("seconds", 10), format="png", widths=())
    merged = with_metadata(defaults, {"Thumbnail-At": "50%", "thumbnail-widths": "200,100"})
    assert merged == Options(at=TimeSpec("percent", 50), format="png", widths=(100, 200))
    assert merged.extension == "png"
    assert with_metadata(defaults, {"thumbnail-format": "JPG"}).extension == "jpg"
    assert from_environment({}) == Options()  # auto, jpeg, displayed size


def test_bad_metadata_names_key_and_value() -> None:
    with pytest.raises(InvalidOptionsError) as caught:
        with_metadata(Options(), {"thumbnail-format": "gif"})
    assert "metadata thumbnail-format" in caught.value.message and "'gif'" in caught.value.message
    with pytest.raises(InvalidOptionsError, match="setting THUMBNAIL_WIDTHS"):
        from_environment({"THUMBNAIL_WIDTHS": "wide"})
