"""Fake language-model servers: real HTTP servers on 127.0.0.1, each in a thread.

- FakeGeminiServer speaks the Gemini REST API (`POST /v1beta/models/{model}:generateContent`),
  so google-genai reaches it through its base-URL option exactly as it reaches Google.
- FakeOpenAIServer speaks the OpenAI chat-completions API (`POST /v1/chat/completions`), like
  Ollama, llama.cpp server or vLLM.

Each records every request it receives (method, path, headers, raw body) and answers from a
queue of scripted replies (the last one repeats): a text, an HTTP error status, a malformed
body, or a reply that only comes after a delay (to trip the client's timeout).
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    kind: str  # text | status | malformed_json | wrong_shape
    text: str = ""
    status: int = 200
    delay: float = 0.0

    @classmethod
    def ok(cls, text: str, *, delay: float = 0.0) -> "Reply":
        return cls("text", text=text, delay=delay)

    @classmethod
    def error(cls, status: int) -> "Reply":
        return cls("status", status=status)

    @classmethod
    def malformed_json(cls) -> "Reply":
        return cls("malformed_json")

    @classmethod
    def wrong_shape(cls) -> "Reply":
        return cls("wrong_shape")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    def everything(self) -> str:
        """Request line, every header and the body, as one string to search."""
        head = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return f"{self.method} {self.path}\n{head}\n\n{self.body.decode('utf-8', 'replace')}"


@dataclass
class _State:
    replies: list[Reply] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _FakeServer:
    path_pattern: re.Pattern[str]

    def __init__(self) -> None:
        self.state = _State(replies=[Reply.ok(self.default_text)])
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = RecordedRequest("POST", self.path, {k: v for k, v in self.headers.items()}, body)
                with server.state.lock:
                    server.state.requests.append(recorded)
                    reply = server.state.replies.pop(0) if len(server.state.replies) > 1 else server.state.replies[0]
                match = server.path_pattern.match(self.path.split("?", 1)[0])
                if not match:
                    self._send(404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}})
                    return
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.kind == "status":
                    self._send(reply.status, server.error_body(reply.status))
                elif reply.kind == "malformed_json":
                    self._send_raw(200, b'{"candidates": [ {"content": this is not json', "application/json")
                elif reply.kind == "wrong_shape":
                    self._send(200, {"unexpected": ["no", "candidates", "or", "choices"]})
                else:
                    self._send(200, server.success_body(reply.text, match))

            def do_GET(self) -> None:  # noqa: N802
                self._send(404, {"error": {"code": 404, "message": "Not found"}})

            def _send(self, status: int, payload: dict) -> None:
                self._send_raw(status, json.dumps(payload).encode(), "application/json")

            def _send_raw(self, status: int, data: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=type(self).__name__, daemon=True)

    # --- scripting and inspection ---------------------------------------------------------
    default_text = "fake"

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies in order; the last one repeats."""
        with self.state.lock:
            self.state.replies = list(replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.state.lock:
            return list(self.state.requests)

    def start(self) -> "_FakeServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- wire format (per API) -----------------------------------------------------------
    def success_body(self, text: str, match: re.Match[str]) -> dict:
        raise NotImplementedError

    def error_body(self, status: int) -> dict:
        raise NotImplementedError


_GEMINI_STATUS = {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class FakeGeminiServer(_FakeServer):
    path_pattern = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):generateContent$")

    @property
    def base_url(self) -> str:
        return self.root_url + "/"

    def success_body(self, text: str, match: re.Match[str]) -> dict:
        return {
            "candidates": [
                {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {"promptTokenCount": 321, "candidatesTokenCount": 210, "totalTokenCount": 531},
            "modelVersion": match.group("model"),
            "responseId": "fake-response-1",
        }

    def error_body(self, status: int) -> dict:
        return {"error": {"code": status, "message": "scripted failure", "status": _GEMINI_STATUS.get(status, "UNKNOWN")}}


class FakeOpenAIServer(_FakeServer):
    path_pattern = re.compile(r"^/v1/chat/completions$")

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    def success_body(self, text: str, match: re.Match[str]) -> dict:
        return {
            "id": "chatcmpl-fake-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 321, "completion_tokens": 210, "total_tokens": 531},
        }

    def error_body(self, status: int) -> dict:
        return {"error": {"message": "scripted failure", "type": "server_error" if status >= 500 else "rate_limit", "code": status}}
