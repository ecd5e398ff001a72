"""Per-request void fields: parsing, validation and their canonical form.

Requests carry the fields in ``SamplingParams.extra_args`` (the OpenAI server
fills it from top-level body fields or ``vllm_xargs``). Every field is parsed
here, once, into a frozen :class:`VoidParams`; anything malformed raises a
``ValueError`` whose message starts with the offending field's name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PHASES = ("prefill", "decode")
MODES = ("off", "trace", "mask", "skip")
POLICIES = ("profile", "adaptive", "shortgpt")
FIELDS = ("void_ratio", "void_alpha", "void_mode", "void_policy", "void_trace")
# The canonical form (``VoidParams.to_json``) as one string: how the server
# hands already-validated params to the engine through ``vllm_xargs``, whose
# values must be scalars.
CANONICAL_FIELD = "void_params"
DEFAULT_ALPHA = 0.8


class VoidParamError(ValueError):
    """A void field is malformed; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class PhaseParams:
    """How one phase (prefill or decode) of a request treats void layers."""

    mode: str = "skip"
    ratio: float = 0.0
    alpha: float = DEFAULT_ALPHA
    policy: str = "profile"

    @property
    def skips(self) -> bool:
        """True when this phase really leaves layers out."""
        return self.mode == "skip" and self.ratio > 0

    @property
    def needs_lac(self) -> bool:
        """True when LAC must be computed for this phase's tokens."""
        return self.mode in ("trace", "mask") or (self.skips and self.policy == "adaptive")


@dataclass(frozen=True)
class VoidParams:
    prefill: PhaseParams = PhaseParams()
    decode: PhaseParams = PhaseParams()
    trace: bool = False

    def phase(self, is_decode: bool) -> PhaseParams:
        return self.decode if is_decode else self.prefill

    @property
    def is_stock(self) -> bool:
        """True when the request's tokens are computed exactly as stock vLLM does."""
        return not self.trace and all(
            not p.skips and not p.needs_lac for p in (self.prefill, self.decode)
        )

    @property
    def kv_exact(self) -> bool:
        """True when the KV this request writes equals the full model's."""
        return self.prefill_kv_exact and not self.decode.skips

    @property
    def prefill_kv_exact(self) -> bool:
        """True when the KV of the prompt's tokens equals the full model's."""
        return not self.prefill.skips

    def cache_key(self) -> str:
        """Stable key of everything that changes the KV cache this request writes.

        Used as prefix-cache salt so that blocks written while skipping never
        serve a request under another policy.
        """
        parts = []
        for name in PHASES:
            p = getattr(self, name)
            if p.skips:
                parts.append(f"{name}={p.policy}:{p.ratio!r}:{p.alpha!r}")
        return "void[" + ",".join(parts) + "]"

    def to_fields(self) -> dict[str, Any]:
        """The request fields that parse back into these params."""
        return {
            "void_ratio": {"prefill": self.prefill.ratio, "decode": self.decode.ratio},
            "void_alpha": {"prefill": self.prefill.alpha, "decode": self.decode.alpha},
            "void_mode": {"prefill": self.prefill.mode, "decode": self.decode.mode},
            "void_policy": {"prefill": self.prefill.policy, "decode": self.decode.policy},
            "void_trace": self.trace,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_fields(), sort_keys=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            name: {
                "mode": p.mode,
                "ratio": p.ratio,
                "alpha": p.alpha,
                "policy": p.policy,
            }
            for name, p in (("prefill", self.prefill), ("decode", self.decode))
        } | {"trace": self.trace}


def _per_phase(field: str, value: Any, decode_only: bool) -> dict[str, Any]:
    """Spread a field over the phases: an object sets each phase by name."""
    if isinstance(value, Mapping):
        unknown = set(value) - set(PHASES)
        if unknown:
            raise VoidParamError(
                field, f"unknown phase(s) {sorted(unknown)}; use 'prefill' and 'decode'"
            )
        return dict(value)
    if decode_only:
        return {"decode": value}
    return {name: value for name in PHASES}


def _number(field: str, value: Any, low: float, high: float, high_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise VoidParamError(field, f"must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    closing = ")" if high_open else "]"
    if math.isnan(value) or value < low or value > high or (high_open and value == high):
        raise VoidParamError(field, f"must be in [{low:g}, {high:g}{closing}, got {value!r}")
    return value


def _choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise VoidParamError(field, f"must be one of {list(choices)}, got {value!r}")
    return value


def parse_phase_text(text: str, parse: type) -> Any:
    """Command-line form of a per-phase field: ``0.25`` or ``prefill=0.1,decode=0.5``."""
    if "=" not in text:
        return parse(text)
    pairs = (item.split("=", 1) for item in text.split(","))
    return {phase.strip(): parse(value) for phase, value in pairs}


def parse_void_params(
    extra_args: Mapping[str, Any] | None, defaults: VoidParams | None = None
) -> VoidParams:
    """Read the ``void_*`` fields of ``extra_args``; other keys are ignored.

    ``void_ratio`` given as a number applies to decode only (prefill runs the
    full model); every other per-phase field given as a scalar applies to both.
    """
    defaults = defaults or VoidParams()
    extra_args = extra_args or {}
    if CANONICAL_FIELD in extra_args:
        try:
            fields = json.loads(extra_args[CANONICAL_FIELD])
        except (TypeError, json.JSONDecodeError):
            raise VoidParamError(CANONICAL_FIELD, "must be a JSON object string") from None
        if not isinstance(fields, dict) or CANONICAL_FIELD in fields:
            raise VoidParamError(CANONICAL_FIELD, "must be a JSON object of void fields")
        return parse_void_params(fields, defaults)
    for key in extra_args:
        if key.startswith("void_") and key not in FIELDS:
            raise VoidParamError(key, f"unknown void field; known fields are {list(FIELDS)}")

    phases = {name: dict(getattr(defaults, name).__dict__) for name in PHASES}
    specs = (
        ("void_ratio", "ratio", True, lambda f, v: _number(f, v, 0.0, 1.0, high_open=True)),
        ("void_alpha", "alpha", False, lambda f, v: _number(f, v, 0.0, 1.0, high_open=False)),
        ("void_mode", "mode", False, lambda f, v: _choice(f, v, MODES)),
        ("void_policy", "policy", False, lambda f, v: _choice(f, v, POLICIES)),
    )
    for field, attr, decode_only, check in specs:
        if field not in extra_args or extra_args[field] is None:
            continue
        for phase, value in _per_phase(field, extra_args[field], decode_only).items():
            phases[phase][attr] = check(
                f"{field}.{phase}" if isinstance(extra_args[field], Mapping) else field, value
            )

    if (
        phases["prefill"]["policy"] == "adaptive"
        and phases["prefill"]["mode"] == "skip"
        and (phases["prefill"]["ratio"] > 0)
    ):
        raise VoidParamError(
            "void_policy.prefill",
            "'adaptive' decides from the prompt itself, so it applies to decode only",
        )

    trace = extra_args.get("void_trace", defaults.trace)
    if not isinstance(trace, bool):
        raise VoidParamError("void_trace", f"must be a boolean, got {trace!r}")
    return VoidParams(
        prefill=PhaseParams(**phases["prefill"]),
        decode=PhaseParams(**phases["decode"]),
        trace=trace,
    )
