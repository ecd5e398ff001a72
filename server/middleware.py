"""ASGI middleware that adds void fields and results to vLLM's own OpenAI server.

vLLM's server already does chat templates, protocol models, streaming, tool
calls, logprobs, auth and metrics; ``vllm-void serve`` runs it with
``--middleware vllm_void.server.middleware.VoidMiddleware``, and this layer:

- takes the void fields from the top level of a completion or chat body (or
  from ``vllm_xargs``), validates them (a bad one is a 400 in OpenAI's error
  shape naming the field) and passes them on, canonical, in ``vllm_xargs``;
- tags the request with an ``X-Request-Id`` so its engine request is known;
- adds a ``void`` block to the response (as a last event before ``[DONE]``
  when streaming): layers used per phase, the skip set, and with
  ``void_trace`` the per-token activation bits;
- counts skipped layers and per-phase usage in Prometheus counters, which
  vLLM's ``/metrics`` exports;
- answers ``GET /v1/void/profile`` with the model's void profile.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from prometheus_client import Counter

from vllm_void.params import (
    CANONICAL_FIELD,
    FIELDS,
    VoidParamError,
    VoidParams,
    parse_void_params,
)
from vllm_void.policy import load_profile

GENERATION_PATHS = {"/v1/chat/completions": "chatcmpl", "/v1/completions": "cmpl"}
DEFAULTS_ENV = "VLLM_VOID_SERVER_DEFAULTS"

TOKENS = Counter("vllm_void_tokens", "Tokens processed, by phase", ["phase"])
LAYERS_RUN = Counter("vllm_void_layers_run", "Decoder layers run over all tokens", ["phase"])
LAYERS_SKIPPED = Counter(
    "vllm_void_layers_skipped", "Decoder layers skipped over all tokens", ["phase"]
)


def server_defaults() -> VoidParams:
    """Defaults set by ``vllm-void serve`` flags (passed through the environment)."""
    raw = os.environ.get(DEFAULTS_ENV)
    return parse_void_params(json.loads(raw)) if raw else VoidParams()


def error_body(message: str, param: str | None, status: int = 400) -> bytes:
    kind = {400: "BadRequestError", 404: "NotFoundError"}.get(status, "Error")
    return json.dumps(
        {"error": {"message": message, "type": kind, "param": param, "code": status}}
    ).encode()


def extract_void_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Remove the void fields from a request body (top level and ``vllm_xargs``)."""
    fields: dict[str, Any] = {}
    xargs = body.get("vllm_xargs")
    for source in (xargs if isinstance(xargs, dict) else {}, body):
        for key in [k for k in source if isinstance(k, str) and k.startswith("void_")]:
            fields[key] = source.pop(key)
    return fields


def record_metrics(report: dict[str, Any]) -> None:
    num_layers = report.get("num_layers", 0)
    for phase, tokens in report.get("tokens", {}).items():
        used = report["layers_used"].get(phase)
        if not tokens or used is None:
            continue
        run = used * tokens * num_layers
        TOKENS.labels(phase).inc(tokens)
        LAYERS_RUN.labels(phase).inc(run)
        LAYERS_SKIPPED.labels(phase).inc(tokens * num_layers - run)


class VoidMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.defaults = server_defaults()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == "/v1/void/profile" and method == "GET":
            await self._profile(scope, send)
        elif path in GENERATION_PATHS and method == "POST":
            await self._generation(scope, receive, send, GENERATION_PATHS[path])
        else:
            await self.app(scope, receive, send)

    async def _respond(self, send: Any, status: int, body: bytes) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _profile(self, scope: dict, send: Any) -> None:
        model = scope["app"].state.vllm_config.model_config.model
        profile = load_profile(model)
        if profile is None:
            await self._respond(send, 404, error_body(f"no void profile for {model}", None, 404))
            return
        await self._respond(send, 200, profile.to_json().encode())

    async def _generation(self, scope: dict, receive: Any, send: Any, prefix: str) -> None:
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            await self._respond(send, 400, error_body(f"body is not valid JSON: {err}", None))
            return
        if not isinstance(body, dict):
            await self._respond(send, 400, error_body("body must be a JSON object", None))
            return
        fields = extract_void_fields(body)
        unknown = [k for k in fields if k not in FIELDS]
        try:
            if unknown:
                raise VoidParamError(
                    unknown[0], f"unknown void field; known fields are {list(FIELDS)}"
                )
            params = parse_void_params(fields, self.defaults)
        except VoidParamError as err:
            await self._respond(send, 400, error_body(str(err), err.field))
            return
        xargs = body.get("vllm_xargs") if isinstance(body.get("vllm_xargs"), dict) else {}
        body["vllm_xargs"] = xargs | {CANONICAL_FIELD: params.to_json()}

        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        request_id = dict(headers).get(b"x-request-id", b"").decode() or uuid.uuid4().hex
        headers = [(k, v) for k, v in headers if k.lower() != b"x-request-id"]
        new_raw = json.dumps(body).encode()
        headers += [
            (b"x-request-id", request_id.encode()),
            (b"content-length", str(len(new_raw)).encode()),
        ]
        inner_scope = dict(scope, headers=headers)
        engine_id = f"{prefix}-{request_id}"
        sent = False

        async def inner_receive() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": new_raw, "more_body": False}
            return await receive()

        responder = _VoidResponder(scope["app"], send, engine_id, bool(body.get("stream")))
        await self.app(inner_scope, inner_receive, responder.send)


class _VoidResponder:
    """Wraps ``send``: appends the void block to the response once it is complete."""

    def __init__(self, app: Any, send: Any, engine_id: str, stream: bool) -> None:
        self.app, self._send, self.engine_id, self.stream = app, send, engine_id, stream
        self.status = 0
        self.start: dict | None = None
        self.buffer = b""

    async def _void_block(self) -> dict[str, Any] | None:
        client = self.app.state.engine_client
        results = await client.collective_rpc("void_take_reports_matching", args=(self.engine_id,))
        reports = results[0] if results else {}
        for report in reports.values():
            record_metrics(report)
        if not reports:
            return None
        if len(reports) == 1:
            return next(iter(reports.values()))
        return {"requests": [reports[k] for k in sorted(reports)]}

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self.status != 200:
                await self._send(message)
                return
            self.start = message
            if self.stream:
                await self._send(message)
            return
        if message["type"] != "http.response.body" or self.status != 200:
            await self._send(message)
            return
        if self.stream:
            await self._send_stream_chunk(message)
        else:
            await self._send_whole(message)

    async def _send_stream_chunk(self, message: dict) -> None:
        chunk = message.get("body", b"")
        done = b"data: [DONE]"
        if done in chunk:
            head, _, tail = chunk.partition(done)
            void = await self._void_block()
            event = b""
            if void is not None:
                event = (
                    b"data: "
                    + json.dumps(
                        {"id": self.engine_id, "object": "void", "choices": [], "void": void}
                    ).encode()
                    + b"\n\n"
                )
            message = dict(message, body=head + event + done + tail)
        await self._send(message)

    async def _send_whole(self, message: dict) -> None:
        self.buffer += message.get("body", b"")
        if message.get("more_body"):
            return
        body = self.buffer
        try:
            payload = json.loads(body)
        except json.JSONDecodeError:
            payload = None
        if isinstance(payload, dict):
            void = await self._void_block()
            if void is not None:
                payload["void"] = void
            body = json.dumps(payload).encode()
        assert self.start is not None
        headers = [(k, v) for k, v in self.start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self._send(dict(self.start, headers=headers))
        await self._send({"type": "http.response.body", "body": body})
