"""Answer parsing, log-likelihood choice and fidelity maths on hand-made cases."""

from __future__ import annotations

import math

import pytest

from vllm_void.benchmarks.scoring import choose_by_logprob, parse_answer, perplexity, topk_kl

LETTERS = ("A", "B", "C", "D")
CHOICES = ("Wrong, Wrong", "Wrong, Not wrong", "Not wrong, Wrong", "Paris")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        # Replies seen from SmolLM2 and Qwen2.5-Coder in runs here.
        ("A. Wrong, Wrong", "A"),
        ("A. Wrong, Wrong\nC. Not wrong, Wrong\n", "A"),
        ("The answer is B", "B"),
        ("The correct answer is **C**.", "C"),
        ("**B**", "B"),
        ("**D.** Paris", "D"),
        ("(C)", "C"),
        ("[A]", "A"),
        ("the answer is d.", "D"),
        ("b) Wrong, Not wrong", "B"),
        ("C", "C"),
        ("Answer: (b)", "B"),
        ("Paris", "D"),
        ("The answer is: B", "B"),
        ("B is correct.", "B"),
        ("D, because the scenario is clear.", "D"),
        ("I think it's B.", "B"),
        ("(b)", "B"),
        ("**b**", "B"),
        ("Option A is wrong; the answer is C", "C"),
        ("The correct option is C.", "C"),
        # A letter inside a word, or the article "A", picks nothing.
        ("Because the scenario is clear, I think so.", None),
        ("A scenario like this is morally wrong.", None),
        ("I cannot tell.", None),
        ("", None),
    ],
)
def test_parse_letter_replies(reply, expected):
    assert parse_answer(reply, LETTERS, CHOICES) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [("Yes, it is.", "yes"), ("no", "no"), ("The answer is No.", "no"), ("Maybe.", None)],
)
def test_parse_yes_no(reply, expected):
    assert parse_answer(reply, ("yes", "no")) == expected


def test_choose_by_logprob_hand_computed():
    # Logits over a 5-token vocabulary; " A".." D" are tokens 1..4.
    logits = [2.0, 0.5, 1.5, 1.0, -1.0]
    log_z = math.log(sum(math.exp(x) for x in logits))
    logprobs = {t: x - log_z for t, x in enumerate(logits)}
    tokens = {"A": 1, "B": 2, "C": 3, "D": 4}
    # Token 0 has the highest probability but is not a choice: B wins.
    assert choose_by_logprob(logprobs, tokens) == "B"
    # A choice the engine did not list is impossible, not a default.
    assert choose_by_logprob({4: -3.0}, tokens) == "D"


def test_perplexity_hand_computed():
    assert perplexity([math.log(0.5), math.log(0.25)]) == pytest.approx(math.sqrt(8))
    with pytest.raises(ValueError):
        perplexity([])


def test_topk_kl():
    p = {0: math.log(0.7), 1: math.log(0.2)}
    assert topk_kl(p, p) == pytest.approx(0.0, abs=1e-12)
    q = {0: math.log(0.2), 1: math.log(0.7)}
    # Buckets {0, 1, rest}: p = (.7, .2, .1), q = (.2, .7, .1).
    expected = 0.7 * math.log(0.7 / 0.2) + 0.2 * math.log(0.2 / 0.7)
    assert topk_kl(p, q) == pytest.approx(expected)
    # Token 1 missing from the candidate: it gets a share of the unlisted 0.5,
    # capped by the candidate's smallest listed probability (0.5): 0.25.
    q_missing = {0: math.log(0.5)}
    expected = 0.7 * math.log(0.7 / 0.5) + 0.2 * math.log(0.2 / 0.25) + 0.1 * math.log(0.1 / 0.25)
    assert topk_kl(p, q_missing) == pytest.approx(expected)


def test_lower_case_article_after_answer_is_not_a_letter():
    assert parse_answer("The answer is a tricky one.", LETTERS) is None
    assert parse_answer("The answer is B because of the rule.", LETTERS) == "B"
