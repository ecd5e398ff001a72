"""Benchmark settings: named sets of void fields, written compactly on the command line.

``off``                 the full model (stock computation)
``mask:A``              the paper's masking in both phases at alpha A
``profile:R``           skip the share R of layers in decode, void-profile skip set
``adaptive:R``          the same, each request's own most-void layers
``shortgpt:R``          the same, the lowest block-influence layers (the peer)
``{"name": ..., "void_ratio": ..., ...}``  any void fields, as JSON
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from vllm_void.params import VoidParams, parse_void_params

SKIP_POLICIES = ("profile", "adaptive", "shortgpt")
DEFAULT_SETTINGS = (
    "off",
    "mask:0.2",
    "mask:0.5",
    "mask:0.8",
    *(f"{policy}:{r}" for policy in SKIP_POLICIES for r in (0.1, 0.25, 0.4, 0.5)),
)


@dataclass(frozen=True)
class Setting:
    name: str
    family: str  # off | mask | profile | adaptive | shortgpt | custom
    value: float | None  # alpha for mask, ratio for the skip policies
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> VoidParams:
        return parse_void_params(self.fields)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "value": self.value} | {
            "fields": self.fields
        }


def parse_setting(text: str) -> Setting:
    """One setting from its command-line form; a bad one is a ValueError naming it."""
    text = text.strip()
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"setting {text!r}: not JSON ({err.msg})") from None
        if not isinstance(fields, dict) or not isinstance(fields.get("name"), str):
            raise ValueError(f"setting {text!r}: a JSON setting needs a string 'name'")
        name = fields.pop("name")
        setting = Setting(name, "custom", None, fields)
    elif text == "off":
        setting = Setting("off", "off", None, {"void_mode": "off"})
    else:
        family, _, value = text.partition(":")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(
                f"setting {text!r}: expected FAMILY:NUMBER, e.g. profile:0.25"
            ) from None
        if family == "mask":
            fields = {"void_mode": "mask", "void_alpha": number}
        elif family in SKIP_POLICIES:
            fields = {"void_mode": "skip", "void_ratio": number, "void_policy": family}
        else:
            raise ValueError(
                f"setting {text!r}: family must be off, mask or one of {list(SKIP_POLICIES)}"
            )
        setting = Setting(text, family, number, fields)
    try:
        setting.params  # noqa: B018 -- validates the fields
    except ValueError as err:
        raise ValueError(f"setting {text!r}: {err}") from None
    return setting


def parse_settings(texts: list[str]) -> list[Setting]:
    settings = [parse_setting(t) for t in texts]
    names = [s.name for s in settings]
    if len(set(names)) != len(names):
        raise ValueError(f"settings: names must be unique, got {names}")
    return settings
