"""A fake OpenAI-compatible chat-completions endpoint: real HTTP on 127.0.0.1, with injectable faults.

Used by the generate tests and ``benchmarks/openai_concurrency.py``. Each POST is recorded; the first entries of
``faults`` are answered one per request, then good completions (``completion(body)``, by default one valid tool
call per example asked, derived from the request's seed so that the content does not depend on arrival order).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

KEY = "sk-test-6f1d0c9e-never-write-me"  # the fake's API key: tests check it is written nowhere

ERROR_BODY = {"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}

# fault name -> (status, extra headers, body bytes); "hang" and "cut" are handled by the handler
FAULTS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "error_body": (200, {}, json.dumps(ERROR_BODY).encode()),
    "truncated": (200, {}, b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "mess'),
    "html": (200, {"Content-Type": "text/html"}, b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"),
    "garbage": (200, {}, bytes(range(256))),
    "not_object": (200, {}, b'["choices"]'),
    "no_choices": (200, {}, b'{"id": "x", "object": "chat.completion", "choices": []}'),
    "retry_after": (429, {"Retry-After": "1"}, json.dumps({"error": {"message": "Rate limit reached"}}).encode()),
    "retry_after_long": (429, {"Retry-After": "3600"}, json.dumps({"error": {"message": "Quota exceeded"}}).encode()),
}


def tool_calls(body: dict, choice: int) -> list[dict]:
    """One valid call of the request's tool per example asked (``examples_per_candidate`` is in the prompt; here:
    2), with values made from the request's seed and the choice index."""
    function = body["tools"][0]["function"]
    props = function["parameters"]["properties"]
    calls = []
    for j in range(2):
        tag = f"{body['seed']} {choice} {j}"
        args = {"user_utterance": f"example {tag} for {function['name']}"}
        for name, spec in props.items():
            if name != "user_utterance":
                args[name] = spec["enum"][0] if "enum" in spec else f"value {tag}"
        calls.append(args)
    return calls


def completion(body: dict, calls: Callable[[dict, int], list[dict]] = tool_calls) -> dict:
    """An OpenAI-shaped chat completion with ``body["n"]`` choices, each holding ``calls(body, choice)``."""
    name = body["tools"][0]["function"]["name"]
    choices = []
    for i in range(body["n"]):
        args = calls(body, i)
        message: dict = {"role": "assistant", "content": None}
        message["tool_calls"] = [
            {"id": f"call_{i}_{j}", "type": "function", "function": {"name": name, "arguments": json.dumps(a)}}
            for j, a in enumerate(args)
        ]
        if not args:
            message = {"role": "assistant", "content": "Sure! Here are some examples: ..."}
        choices.append({"index": i, "finish_reason": "tool_calls", "message": message, "logprobs": None})
    usage = {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    return {
        "id": f"chatcmpl-{body['seed']}",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": choices,
        "usage": usage,
    }


class FakeOpenAI(ThreadingHTTPServer):
    """POST {base_url}/chat/completions. ``faults``: HTTP statuses (int, answered with an error JSON) or names of
    :data:`FAULTS`, ``"hang"`` (no answer for ``hang_s``) or ``"cut"`` (half the promised body, then close),
    answered first, one per request. ``latency_s`` delays every answer."""

    daemon_threads = True
    request_queue_size = 64  # the listen backlog (socketserver's default 5 dropped connects of 8 at once: 1 s retries)

    def __init__(self, latency_s: float = 0.0, hang_s: float = 3.0):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.latency_s, self.hang_s = latency_s, hang_s
        self.requests: list[dict] = []
        self.faults: list[int | str] = []
        self.completion: Callable[[dict], dict] = completion
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def next_fault(self, record: dict) -> int | str | None:
        """Record a request and take the fault it gets, if any (atomically: concurrent requests)."""
        with self.lock:
            self.requests.append(record)
            return self.faults.pop(0) if self.faults else None

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@contextlib.contextmanager
def serving(monkeypatch: pytest.MonkeyPatch, **kwargs) -> Iterator[FakeOpenAI]:
    """A running :class:`FakeOpenAI` with ``OPENAI_API_KEY`` = :data:`KEY`, no proxy for 127.0.0.1 and no
    ``OPENAI_BASE_URL``; closed afterwards."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    server = FakeOpenAI(**kwargs)
    try:
        yield server
    finally:
        server.close()


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        record = {"path": self.path, "auth": self.headers.get("Authorization"), "body": body, "time": time.monotonic()}
        fault = self.server.next_fault(record)
        time.sleep(self.server.latency_s)
        if fault == "hang":
            time.sleep(self.server.hang_s)
            self.close_connection = True
            return
        if isinstance(fault, int):
            status, headers, data = fault, {}, json.dumps({"error": {"message": f"fake {fault}", "type": "error"}})
            data = data.encode()
        elif fault is not None and fault != "cut":
            status, headers, data = FAULTS[fault]
        else:
            status, headers, data = 200, {}, json.dumps(self.server.completion(body)).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", headers.get("Content-Type", "application/json"))
            for key, value in headers.items():
                if key != "Content-Type":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if fault == "cut" else data)
            if fault == "cut":
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout, killed)
            self.close_connection = True

    def log_message(self, *args):
        pass
