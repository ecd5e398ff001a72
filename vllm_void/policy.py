"""Which layers a request skips: the ``profile``, ``adaptive`` and ``shortgpt`` policies.

LAC judges a layer only after running it, so ``skip`` decides ahead of time
from LAC evidence gathered earlier:

- ``profile``: per-model void frequency per phase, measured over a calibration
  set and stored as JSON. A ratio r skips the round(r * L) layers most often
  void in that phase; requests with one ratio share one skip set, so a whole
  batch can leave a layer's weights unread.
- ``adaptive``: per request, the prompt and the first ``ADAPTIVE_WARMUP``
  decode tokens run in full with LAC; the rest of the request skips the
  layers that were most often void for it.
- ``shortgpt``: the training-free peer the benchmarks compare against
  (ShortGPT, arXiv 2403.03853): a ratio r skips the round(r * L) layers of
  lowest Block Influence, BI = 1 - mean cosine similarity of a layer's input
  and output hidden states over the calibration set. Static, like ``profile``,
  but ranked by how little a layer turns the state rather than by LAC.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vllm_void.fetch import cache_home

ADAPTIVE_WARMUP = 4
PROFILE_VERSION = 1


def num_skipped(ratio: float, num_layers: int) -> int:
    """Layers left out at ``ratio``; at least one layer always runs."""
    return min(int(round(ratio * num_layers)), num_layers - 1)


def most_void_layers(void_freq: np.ndarray, count: int) -> tuple[int, ...]:
    """The ``count`` layers with the highest void frequency, ascending by index.

    Ties go to the deeper layer: shallow layers build the representation
    every later layer reads.
    """
    if count <= 0:
        return ()
    num_layers = len(void_freq)
    order = sorted(range(num_layers), key=lambda i: (-void_freq[i], -i))
    return tuple(sorted(order[:count]))


@dataclass(frozen=True)
class VoidProfile:
    """Per-layer void frequency of one model, per phase, at one alpha."""

    model: str
    alpha: float
    prefill: tuple[float, ...]
    decode: tuple[float, ...]
    num_tokens: dict[str, int]
    block_influence: tuple[float, ...] | None = None

    @property
    def num_layers(self) -> int:
        return len(self.decode)

    def skip_set(self, is_decode: bool, ratio: float, policy: str = "profile") -> tuple[int, ...]:
        """The layers ``policy`` (``profile`` or ``shortgpt``) skips at ``ratio``."""
        count = num_skipped(ratio, self.num_layers)
        if policy == "shortgpt":
            if self.block_influence is None:
                raise ValueError("void profile has no block influence; calibrate with it")
            # Lowest influence first: the same ranking as "most void".
            return most_void_layers(-np.asarray(self.block_influence), count)
        freq = np.asarray(self.decode if is_decode else self.prefill)
        return most_void_layers(freq, count)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": PROFILE_VERSION,
                "model": self.model,
                "alpha": self.alpha,
                "void_frequency": {"prefill": self.prefill, "decode": self.decode},
                "num_tokens": self.num_tokens,
                "block_influence": self.block_influence,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> VoidProfile:
        data = json.loads(text)
        if data.get("version") != PROFILE_VERSION:
            raise ValueError(f"void profile version {data.get('version')} is not supported")
        freq = data["void_frequency"]
        return cls(
            model=data["model"],
            alpha=float(data["alpha"]),
            prefill=tuple(float(x) for x in freq["prefill"]),
            decode=tuple(float(x) for x in freq["decode"]),
            num_tokens={k: int(v) for k, v in data["num_tokens"].items()},
            block_influence=(
                tuple(float(x) for x in data["block_influence"])
                if data.get("block_influence") is not None
                else None
            ),
        )


def profile_path(model: str) -> Path:
    """Where the void profile of ``model`` (a path or a hub name) is kept."""
    key = str(Path(model).resolve()) if Path(model).exists() else model
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_home() / "profiles" / f"{Path(key).name}-{digest}.json"


def load_profile(model: str) -> VoidProfile | None:
    path = profile_path(model)
    if not path.is_file():
        return None
    return VoidProfile.from_json(path.read_text())


def save_profile(profile: VoidProfile) -> Path:
    path = profile_path(profile.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(profile.to_json())
    tmp.replace(path)
    return path


class AdaptiveChoice:
    """Per-request evidence for the ``adaptive`` policy, and the set it settles on.

    The evidence is the request's own LAC bits: its prompt tokens (many, but
    of the other phase) and its first decode tokens (few, of the right
    phase), weighted equally. The prompt's first token is an attention sink
    whose bits say nothing about the rest, so it is left out.
    """

    def __init__(self, num_layers: int) -> None:
        self.void_counts = {"prefill": np.zeros(num_layers), "decode": np.zeros(num_layers)}
        self.tokens_seen = {"prefill": 0, "decode": 0}
        self.skip_set: tuple[int, ...] | None = None

    def observe(self, phase: str, position: int, activated: np.ndarray) -> None:
        """Add the activation bits ([layers]) of one token seen in full."""
        if self.skip_set is not None or (phase == "prefill" and position == 0):
            return
        self.void_counts[phase] += ~activated.astype(bool)
        self.tokens_seen[phase] += 1

    def settle(self, ratio: float) -> tuple[int, ...] | None:
        """The request's skip set once the warm-up is over, else None."""
        if self.skip_set is None and self.tokens_seen["decode"] >= ADAPTIVE_WARMUP:
            freqs = [
                self.void_counts[p] / self.tokens_seen[p]
                for p in ("prefill", "decode")
                if self.tokens_seen[p]
            ]
            freq = np.mean(freqs, axis=0)
            self.skip_set = most_void_layers(freq, num_skipped(ratio, len(freq)))
        return self.skip_set
