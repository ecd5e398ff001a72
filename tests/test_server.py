"""``vllm-void serve`` as a real HTTP server, called with the real openai client."""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai
import pytest
from conftest import PROMPTS

pytestmark = pytest.mark.slow
NUM_LAYERS = 30
API_KEY = "test-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dockerfile_command() -> list[str]:
    """The command the Docker image runs: its ENTRYPOINT followed by its CMD."""
    lines = (Path(__file__).parent.parent / "Dockerfile").read_text().splitlines()
    command = []
    for keyword in ("ENTRYPOINT", "CMD"):
        (line,) = [x for x in lines if x.startswith(keyword + " ")]
        command += json.loads(line.split(" ", 1)[1])
    return command


@pytest.fixture(scope="module")
def server(smollm2):  # the offline engine first: it calibrates the void profile
    port = _free_port()
    log = open(os.environ.get("VLLM_VOID_SERVER_LOG", os.devnull), "w")
    command = dockerfile_command()
    assert command[:2] == ["vllm-void", "serve"]
    # The image's command, run with this environment's interpreter; later
    # flags override the image's host and port for a loopback test server.
    argv = [sys.executable, "-m", "vllm_void.cli", *command[1:]]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--api-key", API_KEY]
    argv += ["--max-model-len", "2048", "--max-num-seqs", "16", "--seed", "0"]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 600
    while time.time() < deadline:
        assert proc.poll() is None, "server exited during start-up"
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(2)
    else:
        pytest.fail("server did not become healthy")
    yield base
    proc.terminate()
    proc.wait(timeout=60)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server + "/v1", api_key=API_KEY, max_retries=0)


def _chat(client, question, **extra):
    return client.chat.completions.create(
        model=client.models.list().data[0].id,
        messages=[{"role": "user", "content": question}],
        max_tokens=24,
        temperature=0,
        extra_body=extra or None,
    )


def _stream_chat(client, question, **extra):
    stream = client.chat.completions.create(
        model=client.models.list().data[0].id,
        messages=[{"role": "user", "content": question}],
        max_tokens=24,
        temperature=0,
        stream=True,
        extra_body=extra or None,
    )
    text, void = "", None
    for chunk in stream:
        extra_fields = chunk.model_extra or {}
        if "void" in extra_fields:
            void = extra_fields["void"]
        for choice in chunk.choices:
            text += choice.delta.content or ""
    return text, void


def test_chat_with_and_without_void(client):
    plain = _chat(client, "What is the capital of France?")
    assert "Paris" in plain.choices[0].message.content
    assert plain.model_extra["void"]["layers_used"]["decode"] == 1.0
    skipped = _chat(client, "What is the capital of France?", void_ratio=0.5)
    void = skipped.model_extra["void"]
    assert len(void["skipped_layers"]["decode"]) == 15
    assert void["layers_used"]["decode"] == pytest.approx(0.5)
    assert void["layers_used"]["prefill"] == 1.0


def test_ratio_zero_matches_offline_engine(client, smollm2):
    from vllm import SamplingParams

    from vllm_void.engine import chat_prompts

    for question in PROMPTS[:3]:
        served = _chat(client, question, void_ratio=0.0).choices[0].message.content
        (offline,) = smollm2.generate(
            chat_prompts(smollm2, [question]),
            SamplingParams(temperature=0, max_tokens=24),
            use_tqdm=False,
        )
        assert served == offline.outputs[0].text


def test_completion_streaming_and_trace_through_xargs(client):
    model = client.models.list().data[0].id
    whole = client.completions.create(
        model=model,
        prompt="The sun is",
        max_tokens=12,
        temperature=0,
        extra_body={"vllm_xargs": {"void_mode": "trace", "void_trace": True}},
    )
    void = whole.model_extra["void"]
    assert len(void["trace"]["decode"]) == len(void["trace"]["decode"])
    assert all(len(bits) == NUM_LAYERS for bits in void["trace"]["prefill"])
    stream = client.completions.create(
        model=model,
        prompt="The sun is",
        max_tokens=12,
        temperature=0,
        stream=True,
        extra_body={"void_ratio": {"prefill": 0.0, "decode": 0.25}},
    )
    text, blocks = "", []
    for chunk in stream:
        if "void" in (chunk.model_extra or {}):
            blocks.append(chunk.model_extra["void"])
        text += "".join(c.text for c in chunk.choices)
    assert len(blocks) == 1 and len(blocks[0]["skipped_layers"]["decode"]) == 8
    assert text


def _post(server, path, body: bytes, key=API_KEY):
    req = urllib.request.Request(
        server + path,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.parametrize(
    "body, param",
    [
        ({"void_ratio": 1.0}, "void_ratio"),
        ({"void_ratio": -0.1}, "void_ratio"),
        ({"void_ratio": "0.5"}, "void_ratio"),
        ({"void_alpha": 3}, "void_alpha"),
        ({"void_mode": "warp"}, "void_mode"),
        ({"void_ratoi": 0.2}, "void_ratoi"),
        ({"vllm_xargs": {"void_ratio": 2}}, "void_ratio"),
    ],
)
def test_bad_void_fields_are_400_naming_the_field(server, client, body, param):
    base = {"model": client.models.list().data[0].id, "prompt": "hi", "max_tokens": 2}
    status, payload = _post(server, "/v1/completions", json.dumps(base | body).encode())
    assert status == 400
    assert payload["error"]["param"] == param and param in payload["error"]["message"]
    assert _chat(client, "Hello").choices[0].message.content


def test_other_bad_requests_are_4xx_and_server_keeps_serving(server, client):
    model = client.models.list().data[0].id
    status, payload = _post(server, "/v1/completions", b"{not json")
    assert status == 400 and "error" in payload
    status, _ = _post(
        server,
        "/v1/completions",
        json.dumps({"model": model, "prompt": "x" * 20000, "max_tokens": 4}).encode(),
    )
    assert status == 400
    status, _ = _post(
        server,
        "/v1/completions",
        json.dumps({"model": "no-such-model", "prompt": "hi", "max_tokens": 2}).encode(),
    )
    assert 400 <= status < 500
    status, _ = _post(
        server,
        "/v1/completions",
        json.dumps({"model": model, "prompt": "hi", "max_tokens": 2}).encode(),
        key="wrong",
    )
    assert status == 401
    assert _chat(client, "Hello").choices[0].message.content


def test_profile_and_metrics_endpoints(server, client):
    req = urllib.request.Request(
        server + "/v1/void/profile", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    with urllib.request.urlopen(req) as r:
        profile = json.loads(r.read())
    assert len(profile["void_frequency"]["decode"]) == NUM_LAYERS
    _chat(client, "Count to three.", void_ratio=0.5)
    with urllib.request.urlopen(server + "/metrics") as r:
        metrics = r.read().decode()
    skipped = [
        line
        for line in metrics.splitlines()
        if line.startswith('vllm_void_layers_skipped_total{phase="decode"}')
    ]
    assert skipped and float(skipped[0].split()[-1]) > 0


def test_concurrent_streams_with_mixed_ratios_match_solo(client):
    questions = [PROMPTS[i % len(PROMPTS)] for i in range(16)]
    ratios = [(0.0, 0.25, 0.5, 0.1)[i % 4] for i in range(16)]
    pairs = list(zip(questions, ratios, strict=True))
    solo = [_stream_chat(client, q, void_ratio=r)[0] for q, r in pairs]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda qr: _stream_chat(client, qr[0], void_ratio=qr[1]), pairs))
    assert [t for t, _ in together] == solo
    for (_, void), r in zip(together, ratios, strict=True):
        assert len(void["skipped_layers"]["decode"]) == round(r * NUM_LAYERS)
