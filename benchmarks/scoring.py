"""Scoring maths: answers parsed from replies, log-likelihood choice, fidelity.

Pure functions on plain data, so each is tested on hand-made cases.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

# A letter: upper case anywhere, lower case only before punctuation or the
# end ("is d."), so that "the answer is a tricky one" picks nothing.
_LETTER = r"[*(\[\s]*([A-D]\b|[a-d](?=[.,):*\]]|\s*$))"
# In order of trust: "The answer is: B" / "Answer: (b)"; then "the correct
# option is **C**" (after the answer, so "Option A is wrong; the answer is
# C" is C); "**B**", "(b)", "[B]"; a letter opening a line ("B. Paris",
# "D, because", "B is correct"); at last the only standalone B-D in the
# reply ("I think it's B."; a lone "A" is too often the article).
_PATTERNS = (
    re.compile(r"(?i:answer)\s*(?:is|would be|should be)?\s*:?\s*(?:(?i:option)\s*)?" + _LETTER),
    re.compile(r"(?i:option|choice)\s*(?:is|would be)?\s*:?\s*" + _LETTER),
    re.compile(r"\*\*\s*([A-Da-d])\s*[.):]?\s*\*\*|[(\[]([A-Da-d])[)\]]"),
    re.compile(
        r"^\s*([A-Da-d])\s*(?:[.,):]|$)|^\s*([A-D])\s+(?=[A-Z0-9(\"']|(?:is|would)\b)", re.M
    ),
)
_STANDALONE = re.compile(r"(?<![\w'*(\[])([B-D])(?![\w'])")
_YES_NO = re.compile(r"\b(yes|no)\b", re.I)


def parse_answer(reply: str, labels: Sequence[str], choices: Sequence[str] = ()) -> str | None:
    """The label a free-form reply picks, or None when it names none.

    Letters (multiple choice): the first of ``_PATTERNS`` that matches,
    then the only standalone letter B-D, then the text of exactly one
    option. A letter inside a word, or the article "A" opening a sentence,
    picks nothing.
    Words (BoolQ's yes/no): the first of them in the reply.
    """
    if all(len(label) == 1 for label in labels):
        for pattern in _PATTERNS:
            for match in pattern.finditer(reply):
                letter = next(g for g in match.groups() if g).upper()
                if letter in labels:
                    return letter
        standalone = set(_STANDALONE.findall(reply)) & set(labels)
        if len(standalone) == 1:
            return standalone.pop()
        text = reply.strip().rstrip(".").lower()
        named = [label for label, c in zip(labels, choices, strict=False) if c.lower() == text]
        return named[0] if len(named) == 1 else None
    for match in _YES_NO.finditer(reply):
        word = match.group(1).lower()
        if word in labels:
            return word
    return None


def choose_by_logprob(logprobs: Mapping[int, float], choice_tokens: Mapping[str, int]) -> str:
    """The choice whose token has the highest log-probability at the answer
    position (lm-evaluation-harness's MMLU scoring; every choice is one token).
    Choices missing from ``logprobs`` count as impossible."""
    return max(choice_tokens, key=lambda label: logprobs.get(choice_tokens[label], -math.inf))


def perplexity(token_logprobs: Sequence[float]) -> float:
    """exp of the mean negative log-likelihood of the scored tokens."""
    if not token_logprobs:
        raise ValueError("perplexity needs at least one token")
    return math.exp(-sum(token_logprobs) / len(token_logprobs))


def topk_kl(reference: Mapping[int, float], candidate: Mapping[int, float]) -> float:
    """KL(reference || candidate) of two next-token distributions known by
    their top-k log-probabilities.

    The vocabulary is folded into the reference's top-k tokens plus one
    "rest" bucket, an exact KL of that coarser pair (so a lower bound of the
    full one, by the data-processing inequality, when the masses are exact).
    A reference token missing from the candidate's list gets its share of the
    candidate's unlisted mass, capped by the candidate's smallest listed one.
    """
    ref = {t: math.exp(lp) for t, lp in reference.items()}
    cand = {t: math.exp(lp) for t, lp in candidate.items()}
    unlisted = max(0.0, 1.0 - sum(cand.values()))
    missing = [t for t in ref if t not in cand]
    floor = min(cand.values()) if cand else 1.0
    share = min(floor, unlisted / (len(missing) + 1)) if missing else 0.0
    q = {t: cand.get(t, share) for t in ref}
    p_rest = max(0.0, 1.0 - sum(ref.values()))
    q_rest = max(1e-12, 1.0 - sum(q.values()))
    kl = sum(p * math.log(p / max(q[t], 1e-12)) for t, p in ref.items() if p > 0)
    if p_rest > 0:
        kl += p_rest * math.log(p_rest / q_rest)
    return max(kl, 0.0)
