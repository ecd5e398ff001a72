from __future__ import annotations

import pytest

from vllm_void.benchmarks.settings import DEFAULT_SETTINGS, parse_setting, parse_settings


def test_compact_forms():
    assert parse_setting("off").params.is_stock
    mask = parse_setting("mask:0.2").params
    assert (mask.prefill.mode, mask.decode.mode, mask.decode.alpha) == ("mask", "mask", 0.2)
    skip = parse_setting("shortgpt:0.25").params
    assert (skip.decode.policy, skip.decode.ratio, skip.prefill.skips) == ("shortgpt", 0.25, False)
    custom = parse_setting('{"name": "both", "void_ratio": {"prefill": 0.1, "decode": 0.3}}')
    assert (custom.name, custom.params.prefill.ratio, custom.params.decode.ratio) == (
        "both",
        0.1,
        0.3,
    )
    assert len(parse_settings(list(DEFAULT_SETTINGS))) == 16


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("profile:1.5", "void_ratio"),
        ("mask:x", "FAMILY:NUMBER"),
        ("prune:0.2", "family must be"),
        ('{"void_ratio": 0.1}', "needs a string 'name'"),
        ('{"name": "x", "void_mode": "fast"}', "void_mode"),
        ("{bad json", "not JSON"),
    ],
)
def test_bad_settings_are_named(text, message):
    with pytest.raises(ValueError, match=message):
        parse_setting(text)


def test_duplicate_names():
    with pytest.raises(ValueError, match="unique"):
        parse_settings(["off", "off"])
