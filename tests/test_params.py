"""Void request fields: what is accepted, and the error for what is not."""

import math

import pytest

from vllm_void.params import VoidParamError, parse_void_params


def test_defaults_are_stock():
    p = parse_void_params({})
    assert p.is_stock and p.kv_exact
    assert p.decode.mode == "skip" and p.decode.ratio == 0.0 and p.decode.alpha == 0.8


def test_number_ratio_is_decode_only():
    p = parse_void_params({"void_ratio": 0.25})
    assert p.decode.ratio == 0.25 and p.prefill.ratio == 0.0
    assert p.decode.skips and not p.prefill.skips and not p.kv_exact


def test_per_phase_fields():
    p = parse_void_params(
        {"void_ratio": {"prefill": 0.1, "decode": 0.5}, "void_mode": {"prefill": "trace"}}
    )
    assert (p.prefill.ratio, p.decode.ratio) == (0.1, 0.5)
    assert p.prefill.mode == "trace" and p.decode.mode == "skip"


def test_cache_key_separates_policies():
    a = parse_void_params({"void_ratio": 0.5}).cache_key()
    b = parse_void_params({"void_ratio": 0.25}).cache_key()
    c = parse_void_params({"void_ratio": 0.5, "void_policy": "adaptive"}).cache_key()
    assert len({a, b, c}) == 3


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"void_ratio": 1.0}, "void_ratio"),
        ({"void_ratio": -0.1}, "void_ratio"),
        ({"void_ratio": math.nan}, "void_ratio"),
        ({"void_ratio": "0.5"}, "void_ratio"),
        ({"void_ratio": True}, "void_ratio"),
        ({"void_ratio": {"decode": 2}}, "void_ratio.decode"),
        ({"void_ratio": {"middle": 0.1}}, "void_ratio"),
        ({"void_alpha": 1.5}, "void_alpha"),
        ({"void_alpha": -0.01}, "void_alpha"),
        ({"void_mode": "fast"}, "void_mode"),
        ({"void_mode": {"decode": "nope"}}, "void_mode.decode"),
        ({"void_policy": "random"}, "void_policy"),
        ({"void_trace": "yes"}, "void_trace"),
        ({"void_ratoi": 0.5}, "void_ratoi"),
        ({"void_ratio": {"prefill": 0.2}, "void_policy": "adaptive"}, "void_policy.prefill"),
    ],
)
def test_bad_fields_name_the_field(extra, field):
    with pytest.raises(ValueError) as err:
        parse_void_params(extra)
    assert isinstance(err.value, VoidParamError)
    assert err.value.field == field
    assert str(err.value).startswith(field + ":")


def test_non_void_keys_are_ignored():
    assert parse_void_params({"other_plugin_arg": 3}).is_stock


def test_canonical_json_round_trips():
    p = parse_void_params(
        {
            "void_ratio": {"prefill": 0.1, "decode": 0.5},
            "void_mode": {"prefill": "mask"},
            "void_alpha": 0.3,
            "void_policy": {"decode": "adaptive"},
            "void_trace": True,
        }
    )
    assert parse_void_params({"void_params": p.to_json()}) == p


def test_canonical_json_is_validated_too():
    with pytest.raises(VoidParamError) as err:
        parse_void_params({"void_params": '{"void_ratio": 3}'})
    assert err.value.field == "void_ratio"
    with pytest.raises(VoidParamError) as err:
        parse_void_params({"void_params": "not json"})
    assert err.value.field == "void_params"
