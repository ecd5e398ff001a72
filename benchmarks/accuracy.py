"""Accuracy and fidelity of void settings, through the real engine.

One engine serves every setting: the void fields are per request, so each
task sends all settings' requests in one batch (prefix caching shares the
prompts of settings whose KV is the full model's). Tasks:

- ``mmlu-gen`` / ``boolq-gen`` / ``gpqa-gen``: the paper's protocol. Chat
  template, the reply parsed for an answer (unparseable replies count wrong
  and are reported).
- ``mmlu-loglik`` / ``boolq-loglik`` / ``gpqa-loglik``: lm-evaluation-harness
  style, the answer label with the highest log-probability after
  "Answer:". The answer position is run as a *decode* step (the prompt's
  last token is forced, see :mod:`forcing`) so decode-phase settings apply.
- ``humaneval``: pass@1, greedy; the reply's code block run against the
  problem's tests in a sandboxed process (:mod:`code_runner`).
- ``fidelity``: against the full model on the same contexts. The full
  model's greedy continuation of chat prompts is forced through each
  setting; at every decode position: top-1 agreement with the full model's
  token and KL(full || setting) of the next-token distributions (top-20
  estimate, :func:`scoring.topk_kl`); and perplexity of real text (MMLU
  questions with their correct answers) forced in decode.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tqdm import tqdm

from vllm_void.benchmarks import code_runner, scoring
from vllm_void.benchmarks.datasets import CodeProblem, Question
from vllm_void.benchmarks.forcing import PROCESSOR, forced_fields
from vllm_void.benchmarks.settings import Setting

LOGPROBS = 20
CODE_PREFIX = "```python\n"
# The end of a completed function: its closing fence, or test code after it.
CODE_STOPS = ["```", "\nif __name__", "\nprint(", "\nassert "]


def make_bench_llm(model: str, **overrides: Any) -> Any:
    """The void engine with the forcing logits processor the scorers need.

    On CPU the KV block is 32 tokens instead of 128, so that settings
    sharing a prompt recompute at most a short tail of it.
    """
    from vllm_void.engine import make_llm, on_cuda

    args = {"logits_processors": [PROCESSOR], "max_logprobs": LOGPROBS}
    if not on_cuda():
        args["block_size"] = 32
    return make_llm(model, **(args | overrides))


class Usage:
    """Layers actually run per phase, summed over a setting's requests, and
    (``activated``) the share LAC found non-void, where it ran: a ``mask``
    setting runs every layer but keeps only the activated ones."""

    def __init__(self) -> None:
        self.layers = Counter()
        self.activated = Counter()
        self.tokens = Counter()
        self.lac_tokens = Counter()

    def add(self, report: dict[str, Any]) -> None:
        activated = report.get("activated_share") or {}
        for phase, share in (report.get("layers_used") or {}).items():
            if share is not None:
                count = report["tokens"][phase]
                self.tokens[phase] += count
                self.layers[phase] += share * count
                if activated.get(phase) is not None:
                    self.lac_tokens[phase] += count
                    self.activated[phase] += activated[phase] * count

    def to_dict(self) -> dict[str, Any]:
        def share(counter: Counter, tokens: Counter) -> dict[str, float | None]:
            return {
                phase: counter[phase] / tokens[phase] if tokens[phase] else None
                for phase in ("prefill", "decode")
            }

        used = share(self.layers, self.tokens)
        return used | {"activated": share(self.activated, self.lac_tokens)}


def run_batch(
    llm: Any,
    settings: Sequence[Setting],
    prompts: Sequence[Any],
    make_params: Callable[[Setting, int], Any],
    label: str,
    chunk: int = 64,
) -> dict[str, tuple[list[Any], dict[str, float | None]]]:
    """Every prompt under every setting; per setting name, the outputs in
    prompt order and the layer usage of its requests.

    ``prompts`` are strings or token-id lists. Settings that keep the
    prompt's KV the full model's (all but prefill skipping) share it through
    the prefix cache: each chunk of prompts is prefilled once first, then sent
    under every setting.
    """
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    from vllm_void.engine import take_reports

    result = {s.name: ([], Usage()) for s in settings}
    print(f"[{label}] {len(prompts)} prompts x {len(settings)} settings", flush=True)
    bar = tqdm(total=len(prompts) * len(settings), desc=label)
    for first in range(0, len(prompts), chunk):
        part = [
            TokensPrompt(prompt_token_ids=p) if isinstance(p, list) else p
            for p in prompts[first : first + chunk]
        ]
        llm.generate(part, SamplingParams(max_tokens=1), use_tqdm=False)
        inputs, params, owners = [], [], []
        for i, prompt in enumerate(part, first):
            for setting in settings:
                sp = make_params(setting, i)
                sp.extra_args = (sp.extra_args or {}) | setting.fields
                inputs.append(prompt)
                params.append(sp)
                owners.append(setting.name)
        outputs = llm.generate(inputs, params, use_tqdm=False)
        reports = take_reports(llm, [o.request_id for o in outputs])
        missing = [o.request_id for o in outputs if o.request_id not in reports]
        if missing:
            raise RuntimeError(f"[{label}] no void report for {len(missing)} requests")
        for owner, output in zip(owners, outputs, strict=True):
            result[owner][0].append(output)
            result[owner][1].add(reports[output.request_id])
        bar.update(len(outputs))
    bar.close()
    return {name: (outs, usage.to_dict()) for name, (outs, usage) in result.items()}


# -- prompts -------------------------------------------------------------
def chat_token_ids(
    llm: Any, asks: Sequence[str], openings: Sequence[str] | None = None
) -> list[list[int]]:
    """User turns in the chat template (plus the start of the assistant's
    reply, if given), tokenized once: the template already holds any BOS,
    which a text prompt would get a second time."""
    from vllm_void.engine import chat_prompts

    tokenizer = llm.get_tokenizer()
    texts = chat_prompts(llm, asks)
    if openings is not None:
        texts = [t + o for t, o in zip(texts, openings, strict=True)]
    return [tokenizer.encode(t, add_special_tokens=False) for t in texts]


def generation_prompt(q: Question) -> str:
    """The user turn of the paper's generation protocol."""
    if q.passage:
        return f"{q.passage}\n\nQuestion: {q.question}\nAnswer yes or no."
    options = "\n".join(f"{label}. {c}" for label, c in zip(q.labels, q.choices, strict=True))
    return (
        f"The following is a multiple choice question about {q.subject}. "
        f"Answer with the letter of the correct option.\n\n{q.question}\n{options}"
    )


def loglik_prompt(q: Question) -> str:
    """lm-evaluation-harness's zero-shot MMLU / BoolQ prompt, up to "Answer:"."""
    if q.passage:
        return f"{q.passage}\nQuestion: {q.question}\nAnswer:"
    options = "\n".join(f"{label}. {c}" for label, c in zip(q.labels, q.choices, strict=True))
    return (
        f"The following are multiple choice questions (with answers) about {q.subject}."
        f"\n\n{q.question}\n{options}\nAnswer:"
    )


def label_tokens(tokenizer: Any, labels: Sequence[str]) -> dict[str, int]:
    """The single token of " A" (" yes", ...) that follows "Answer:"."""
    tokens = {}
    for label in labels:
        ids = tokenizer.encode(" " + label, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"answer label {label!r} is {len(ids)} tokens for this tokenizer")
        tokens[label] = ids[0]
    return tokens


def _by_subject(questions: Sequence[Question], correct: Sequence[bool]) -> dict[str, float]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for q, ok in zip(questions, correct, strict=True):
        groups[q.subject].append(ok)
    return {s: sum(v) / len(v) for s, v in sorted(groups.items())}


def _summary(questions: Sequence[Question], picked: Sequence[str | None], usage: Any) -> dict:
    correct = [p == q.answer_label for p, q in zip(picked, questions, strict=True)]
    counts = Counter(p or "none" for p in picked)
    return {
        "accuracy": sum(correct) / len(correct),
        "num_questions": len(correct),
        "unparseable": counts["none"] / len(correct),
        "picked": dict(counts),
        "by_subject": _by_subject(questions, correct),
        "answers": list(picked),
        "layers_used": usage,
    }


# -- tasks ---------------------------------------------------------------
def closed_generation(
    llm: Any,
    settings: Sequence[Setting],
    questions: Sequence[Question],
    label: str,
    max_tokens: int = 16,
) -> dict[str, Any]:
    from vllm import SamplingParams

    prompts = chat_token_ids(llm, [generation_prompt(q) for q in questions])
    runs = run_batch(
        llm,
        settings,
        prompts,
        lambda s, i: SamplingParams(temperature=0.0, max_tokens=max_tokens),
        label,
    )
    out = {}
    for name, (outputs, usage) in runs.items():
        replies = [o.outputs[0].text for o in outputs]
        picked = [
            scoring.parse_answer(r, q.labels, q.choices)
            for r, q in zip(replies, questions, strict=True)
        ]
        out[name] = _summary(questions, picked, usage) | {"examples": replies[:5]}
    return out


def closed_loglik(
    llm: Any, settings: Sequence[Setting], questions: Sequence[Question], label: str
) -> dict[str, Any]:
    from vllm import SamplingParams

    tokenizer = llm.get_tokenizer()
    prompts = [tokenizer.encode(loglik_prompt(q)) for q in questions]
    choice_ids = [label_tokens(tokenizer, q.labels) for q in questions]

    def params(setting: Setting, i: int) -> Any:
        # The prompt's last token is generated (forced), so the answer
        # position is a decode step under the setting's decode policy.
        return SamplingParams(
            temperature=0.0,
            max_tokens=2,
            logprobs=LOGPROBS,
            extra_args=forced_fields(prompts[i][-1:], list(choice_ids[i].values())),
        )

    runs = run_batch(llm, settings, [p[:-1] for p in prompts], params, label)
    out = {}
    for name, (outputs, usage) in runs.items():
        picked = []
        for output, choices in zip(outputs, choice_ids, strict=True):
            answer_step = output.outputs[0].logprobs[1]
            logprobs = {t: lp.logprob for t, lp in answer_step.items()}
            picked.append(scoring.choose_by_logprob(logprobs, choices))
        out[name] = _summary(questions, picked, usage)
    return out


def humaneval(
    llm: Any,
    settings: Sequence[Setting],
    problems: Sequence[CodeProblem],
    max_tokens: int = 384,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """pass@1 (greedy). The assistant turn is opened with a python fence and
    the problem's own signature and docstring, so the model writes the body
    (a third of the tokens of rewriting the whole function, which matters on
    a CPU) and generation stops at the closing fence or at top-level test
    code after the function."""
    from vllm import SamplingParams

    asks = [
        "Complete the following Python function. Reply with the whole function "
        f"in one python code block.\n\n```python\n{p.prompt}```"
        for p in problems
    ]
    openings = [CODE_PREFIX + p.prompt for p in problems]
    prompts = chat_token_ids(llm, asks, openings)
    runs = run_batch(
        llm,
        settings,
        prompts,
        lambda s, i: SamplingParams(temperature=0.0, max_tokens=max_tokens, stop=CODE_STOPS),
        "humaneval",
    )
    jobs = [
        (name, problem, code_runner.extract_code(opening + o.outputs[0].text, problem))
        for name, (outputs, _) in runs.items()
        for problem, opening, o in zip(problems, openings, outputs, strict=True)
    ]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(
            tqdm(
                pool.map(
                    lambda job: code_runner.run_program(
                        code_runner.humaneval_program(job[2], job[1]), timeout=timeout
                    ),
                    jobs,
                ),
                total=len(jobs),
                desc="running tests",
            )
        )
    out: dict[str, Any] = {}
    for (name, problem, _), result in zip(jobs, results, strict=True):
        entry = out.setdefault(name, {"passed": [], "status": Counter()})
        entry["status"][result.status] += 1
        if result.passed:
            entry["passed"].append(problem.task_id)
    for name, (outputs, usage) in runs.items():
        entry = out[name]
        entry["pass_at_1"] = len(entry["passed"]) / len(problems)
        entry["num_problems"] = len(problems)
        entry["status"] = dict(entry["status"])
        entry["layers_used"] = usage
        # A broken setting rambles to max_tokens instead of closing the function.
        lengths = [len(o.outputs[0].token_ids) for o in outputs]
        entry["mean_tokens"] = statistics.fmean(lengths)
        entry["hit_max_tokens"] = sum(n >= max_tokens for n in lengths) / len(lengths)
        entry["completions"] = {
            p.task_id: o.outputs[0].text for p, o in zip(problems, outputs, strict=True)
        }
    return out


def fidelity(
    llm: Any,
    settings: Sequence[Setting],
    questions: Sequence[Question],
    num_tokens: int = 32,
    text_tokens: int = 96,
) -> dict[str, Any]:
    """Against the full model on the same contexts (see module doc), three
    groups of requests per setting: the full model's greedy reply forced
    (top-1 agreement and KL at each decode position), real text forced
    (perplexity), and the setting's own greedy reply (``greedy_prefix``:
    the share of the full model's first ``num_tokens`` tokens it reproduces
    before the first difference)."""
    from vllm import SamplingParams

    from vllm_void.benchmarks.settings import parse_setting

    tokenizer = llm.get_tokenizer()
    chat_ids = chat_token_ids(llm, [generation_prompt(q) for q in questions])
    ((reference, _),) = run_batch(
        llm,
        [parse_setting("off")],
        chat_ids,
        lambda s, i: SamplingParams(temperature=0.0, max_tokens=num_tokens, logprobs=LOGPROBS),
        "fidelity reference",
    ).values()
    ref_tokens = [list(o.outputs[0].token_ids) for o in reference]
    ref_logprobs = [
        [{t: lp.logprob for t, lp in step.items()} for step in o.outputs[0].logprobs]
        for o in reference
    ]
    texts = [f"{q.question} {q.choices[q.answer]}" for q in questions]
    text_ids = [tokenizer.encode(t, add_special_tokens=False)[: text_tokens + 2] for t in texts]
    # Two tokens of context, the rest forced; texts too short to score are left out.
    text_ids = [ids for ids in text_ids if len(ids) > 3]
    n, m = len(chat_ids), len(text_ids)
    prompts = chat_ids + [ids[:2] for ids in text_ids] + chat_ids
    forced = ref_tokens + [ids[2:] for ids in text_ids]

    def params(setting: Setting, i: int) -> Any:
        if i >= n + m:  # free-running greedy
            return SamplingParams(temperature=0.0, max_tokens=num_tokens)
        return SamplingParams(
            temperature=0.0,
            max_tokens=len(forced[i]),
            logprobs=LOGPROBS,
            extra_args=forced_fields(forced[i]),
        )

    runs = run_batch(llm, settings, prompts, params, "fidelity")
    out = {}
    for name, (outputs, usage) in runs.items():
        agree, kls, text_lps, prefixes = [], [], [], []
        for i, output in enumerate(outputs):
            if i >= n + m:
                ref, own = ref_tokens[i - n - m], list(output.outputs[0].token_ids)
                # A reply that ends early differs where it ended.
                same = next((k for k, t in enumerate(ref) if k >= len(own) or own[k] != t), None)
                prefixes.append((len(ref) if same is None else same) / len(ref))
                continue
            steps = [{t: lp.logprob for t, lp in s.items()} for s in output.outputs[0].logprobs]
            # Step 0 comes from the prompt's (prefill) pass: score decode steps only.
            for pos in range(1, len(steps)):
                if i < n:
                    top = max(steps[pos], key=steps[pos].get)
                    agree.append(top == ref_tokens[i][pos])
                    kls.append(scoring.topk_kl(ref_logprobs[i][pos], steps[pos]))
                else:
                    text_lps.append(steps[pos][forced[i][pos]])
        out[name] = {
            "token_agreement": sum(agree) / len(agree),
            "greedy_prefix": statistics.fmean(prefixes),
            "kl": statistics.fmean(kls),
            "perplexity": scoring.perplexity(text_lps),
            "num_positions": len(agree),
            "num_text_tokens": len(text_lps),
            "layers_used": usage,
        }
    return out


def layer_usage_by_alpha(
    llm: Any, prompts: Sequence[str], alphas: Sequence[float], max_tokens: int = 32
) -> dict[str, Any]:
    """Share of layers LAC activates per phase, against alpha (trace mode)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    from vllm_void.engine import generate

    token_prompts = [TokensPrompt(prompt_token_ids=ids) for ids in chat_token_ids(llm, prompts)]
    out = {"alpha": list(alphas), "prefill": [], "decode": []}
    for alpha in alphas:
        params = SamplingParams(
            temperature=0.0,
            max_tokens=max_tokens,
            extra_args={"void_mode": "trace", "void_alpha": alpha},
        )
        reports = [r for _, r in generate(llm, token_prompts, params)]
        for phase in ("prefill", "decode"):
            shares = [r["activated_share"][phase] for r in reports]
            tokens = [r["tokens"][phase] for r in reports]
            out[phase].append(sum(s * t for s, t in zip(shares, tokens, strict=True)) / sum(tokens))
    return out


def void_heatmap(llm: Any, prompt: str, alpha: float = 0.8, max_tokens: int = 48) -> dict:
    """Per-token activation bits [tokens x layers] of one chat request, per phase."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    from vllm_void.engine import generate

    params = SamplingParams(
        temperature=0.0,
        max_tokens=max_tokens,
        extra_args={"void_mode": "trace", "void_trace": True, "void_alpha": alpha},
    )
    (ids,) = chat_token_ids(llm, [prompt])
    # Prompt tokens found in the prefix cache do not run, so have no bits.
    llm.reset_prefix_cache()
    ((output, report),) = generate(llm, [TokensPrompt(prompt_token_ids=ids)], params)
    tokenizer = llm.get_tokenizer()
    bits = report["trace"]
    # Each row is the token the step fed in: the whole prompt, then every
    # generated token but the last (sampled, never fed back).
    fed = {"prefill": list(output.prompt_token_ids), "decode": list(output.outputs[0].token_ids)}
    if len(bits["prefill"]) != len(fed["prefill"]):
        raise RuntimeError(
            f"heatmap: {len(bits['prefill'])} prompt rows traced for {len(fed['prefill'])} tokens"
        )
    return {
        "prompt": prompt,
        "alpha": alpha,
        "reply": output.outputs[0].text,
        "tokens": {
            phase: [tokenizer.decode([t]) for t in fed[phase][: len(bits[phase])]]
            for phase in ("prefill", "decode")
        },
        "bits": bits,
    }
