#!/usr/bin/env python3
"""STAND-IN for Ollama (hearth lab). Not Ollama: it serves no model.

It mimics the command line and HTTP surface the deploy and the gateway rely on,
so their real code paths run in the lab: `ollama serve|list|pull|ps|--version`,
OLLAMA_HOST, OLLAMA_KEEP_ALIVE ("0" unloads right after an answer; "5m", "24h",
seconds; negative keeps forever), OLLAMA_MAX_LOADED_MODELS, OLLAMA_MODELS.
Answers are deterministic echo text. Stdlib only: it runs on a stock Debian python3.

Behaviour kept as Ollama's (checked against its source: api/types.go ``Duration``,
envconfig, server/sched.go, openai/openai.go; see docs/lab.md):

- a request's ``keep_alive`` is a number of seconds or a Go duration string
  ("5m", "1h30m", "0"); negative keeps the model loaded forever; a unit-less
  string such as "300" is refused (Go's time.ParseDuration); absent = the server's
  OLLAMA_KEEP_ALIVE (which, unlike a request, also takes plain seconds);
- /v1/chat/completions has no ``keep_alive`` field: the server default applies;
- with OLLAMA_MAX_LOADED_MODELS models loaded, a request for another model waits
  until a loaded one is idle, then the idle one with the shortest keep-alive (its last
  request's; negative = longest), then by name, is unloaded (``findRunnerToUnload``;
  a model answering a request is never unloaded under it);
- /api/ps lists loaded models with ``expires_at`` (far future for "forever").

Stand-in knobs (not Ollama's): OLLAMA_STANDIN_LOAD_S seconds a load takes (the
swap cost; reported as ``load_duration``), OLLAMA_STANDIN_ANSWER_S seconds an
answer takes (so tests can hold a model busy).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "0.14.0-standin"
DEFAULT_PORT = 11434
FOREVER = float("inf")


def parse_host(value: str | None) -> tuple[str, int]:
    """OLLAMA_HOST as (host, port): 'h', 'h:p', ':p', 'http://h:p'."""
    value = (value or "127.0.0.1").strip()
    value = re.sub(r"^[a-z]+://", "", value).rstrip("/")
    host, _, port = value.rpartition(":") if ":" in value else (value, "", "")
    return host or "127.0.0.1", int(port) if port else DEFAULT_PORT


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_keep_alive(value: object) -> float:
    """Seconds to keep a model loaded: Go durations, plain seconds, negative = forever."""
    if isinstance(value, bool):
        raise ValueError(f"invalid keep_alive: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text.lstrip("-"))
            if not parts or "".join(n + u for n, u in parts) != text.lstrip("-"):
                raise ValueError(f"invalid duration: {value!r}")
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
            seconds = -seconds if text.startswith("-") else seconds
    return FOREVER if seconds < 0 else seconds


_GO_DURATION = re.compile(r"[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+")


def parse_request_keep_alive(value: object) -> float:
    """A request's ``keep_alive`` as Ollama's api.Duration reads JSON: a number is
    seconds, a string is a Go duration (unit required, except "0"); negative = forever."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"Unsupported type: {type(value).__name__}")
    if isinstance(value, str) and value not in ("0", "-0", "+0") and not _GO_DURATION.fullmatch(value):
        raise ValueError(f'time: invalid duration "{value}"')
    return parse_keep_alive(value)


def now_iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).isoformat()


def model_info(name: str) -> dict:
    """Deterministic metadata for a stand-in model (size from a '14b'-like tag)."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    m = re.search(r"(\d+(?:\.\d+)?)b", name)
    size = int(float(m.group(1)) * 0.6e9) if m else 1_000_000_000
    return {"name": name, "model": name, "size": size, "digest": digest,
            "details": {"format": "gguf", "family": "standin", "parameter_size":
                        (m.group(0).upper() if m else "1B"), "quantization_level": "Q4_K_M"}}


def normalize(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


class Runtime:
    """Pulled models on disk, loaded models in 'memory' with keep-alive expiry."""

    def __init__(self, models_dir: str, keep_alive: float, max_loaded: int,
                 load_s: float = 0.0, answer_s: float = 0.0) -> None:
        self.dir = models_dir
        self.keep_alive = keep_alive
        self.max_loaded = max(1, max_loaded)
        self.load_s, self.answer_s = load_s, answer_s
        # name -> {"expires": t, "used": t, "refs": requests in progress}
        self.loaded: dict[str, dict] = {}
        self.loads: dict[str, int] = {}  # how many times each model was loaded
        self.cond = threading.Condition()
        os.makedirs(self.dir, exist_ok=True)

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, hashlib.sha256(name.encode()).hexdigest() + ".json")

    def pulled(self) -> list[dict]:
        out = []
        for fn in sorted(os.listdir(self.dir)):
            if fn.endswith(".json"):
                with open(os.path.join(self.dir, fn)) as f:
                    out.append(json.load(f))
        return sorted(out, key=lambda m: m["name"])

    def has(self, name: str) -> bool:
        return os.path.exists(self._path(name))

    def pull(self, name: str) -> dict:
        info = {**model_info(name), "modified_at": now_iso()}
        tmp = self._path(name) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, self._path(name))
        return info

    def expire(self) -> None:
        t = time.time()
        with self.cond:
            gone = [n for n, s in self.loaded.items() if s["refs"] == 0 and s["expires"] <= t]
            for name in gone:
                del self.loaded[name]
            if gone:
                self.cond.notify_all()

    def load(self, name: str, keep_alive: float | None = None) -> float:
        """Hold ``name`` loaded for one request with its ``keep_alive`` (None: the server's);
        returns the seconds the load took.

        At the cap, wait until a loaded model is idle and unload the idle one with the
        shortest keep-alive, then by name, as Ollama's ``findRunnerToUnload`` does (sorted
        ``ByDurationAndName``: a negative keep-alive counts as the longest); its scheduler
        never unloads a model under a request.
        """
        keep = self.keep_alive if keep_alive is None else keep_alive
        with self.cond:
            while name not in self.loaded and len(self.loaded) >= self.max_loaded:
                idle = [n for n, s in self.loaded.items() if s["refs"] == 0]
                if idle:
                    del self.loaded[min(idle, key=lambda n: (self.loaded[n]["keep"], n))]
                    break
                self.cond.wait(1.0)
            fresh = name not in self.loaded
            if fresh:
                self.loaded[name] = {"expires": FOREVER, "used": time.time(), "refs": 0}
                self.loads[name] = self.loads.get(name, 0) + 1
            slot = self.loaded[name]
            slot["keep"] = keep  # Ollama sets the runner's sessionDuration from each request
            slot["refs"] += 1
            slot["used"] = time.time()
            slot["expires"] = FOREVER  # busy: never expires mid-answer
        if fresh and self.load_s:
            time.sleep(self.load_s)
        return self.load_s if fresh else 0.0

    def release(self, name: str, keep_alive: float) -> None:
        with self.cond:
            slot = self.loaded.get(name)
            if slot is None:
                return
            slot["refs"] = max(0, slot["refs"] - 1)
            slot["used"] = time.time()
            if slot["refs"] == 0:
                if keep_alive == 0:
                    del self.loaded[name]
                else:
                    slot["expires"] = time.time() + keep_alive
            self.cond.notify_all()

    def ps(self) -> list[dict]:
        self.expire()
        with self.cond:
            items = sorted((n, dict(s)) for n, s in self.loaded.items())
        out = []
        for name, s in items:
            info = model_info(name)
            exp = s["expires"]
            expires_at = "2318-12-31T23:59:59Z" if exp == FOREVER else now_iso(exp)
            out.append({**info, "expires_at": expires_at, "size_vram": info["size"]})
        return out


def answer_text(model: str, prompt: str) -> str:
    digest = hashlib.sha256(f"{model}\n{prompt}".encode()).hexdigest()[:8]
    return f"[ollama stand-in {model} #{digest}] you said: {prompt}"


class Handler(BaseHTTPRequestHandler):
    server_version = f"ollama-standin/{VERSION}"
    protocol_version = "HTTP/1.1"
    rt: Runtime

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stderr.write("ollama-standin: " + fmt % args + "\n")

    def parse_request(self) -> bool:
        self.started = time.monotonic()
        return super().parse_request()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One line per request in the shape of Ollama's own request log (gin's logger, as
        `journalctl -u ollama` shows it: ``[GIN] 2024/12/11 - 09:58:58 | 200 |  4.7s |
        10.0.0.123 | POST     "/api/chat"``, ollama/ollama#8387), which hearth-idle reads."""
        took = time.monotonic() - getattr(self, "started", time.monotonic())
        stamp = datetime.now().strftime("%Y/%m/%d - %H:%M:%S")
        path = self.path.split("?", 1)[0]
        sys.stderr.write(f"[GIN] {stamp} | {int(code) if str(code).isdigit() else code} | {took * 1000:10.3f}ms | "
                         f"{self.client_address[0]:>15} | {self.command:<8} \"{path}\"\n")
        sys.stderr.flush()

    # -- plumbing -----------------------------------------------------------
    def _json(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream_start(self, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream_end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise ApiError(400, "invalid JSON body") from None
        if not isinstance(data, dict):
            raise ApiError(400, "body must be a JSON object")
        return data

    def _model(self, body: dict) -> str:
        name = body.get("model") or body.get("name")
        if not name:
            raise ApiError(400, "model is required")
        name = normalize(str(name))
        if not self.rt.has(name):
            raise ApiError(404, f'model "{name}" not found, try pulling it first')
        return name

    def _keep_alive(self, body: dict) -> float:
        if body.get("keep_alive") is None:
            return self.rt.keep_alive
        try:
            return parse_request_keep_alive(body["keep_alive"])
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None

    # -- routes -------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch({"/": self.root, "/api/version": self.version, "/api/tags": self.tags,
                        "/api/ps": self.ps, "/v1/models": self.v1_models,
                        "/standin/loads": self.standin_loads})

    def do_HEAD(self) -> None:
        self._dispatch({"/": self.root})

    def do_POST(self) -> None:
        self._dispatch({"/api/pull": self.pull, "/api/generate": self.generate,
                        "/api/chat": self.chat, "/v1/chat/completions": self.v1_chat,
                        "/api/show": self.show, "/api/embed": self.embed,
                        "/api/embeddings": self.embeddings})

    def _dispatch(self, routes: dict) -> None:
        route = routes.get(self.path.split("?")[0].rstrip("/") or "/")
        if route is None:
            self._json(404, {"error": f"404 page not found: {self.path}"})
            return
        try:
            route()
        except ApiError as exc:
            self._json(exc.code, {"error": exc.message})

    def root(self) -> None:
        data = b"Ollama is running"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def version(self) -> None:
        self._json(200, {"version": VERSION})

    def tags(self) -> None:
        self._json(200, {"models": self.rt.pulled()})

    def ps(self) -> None:
        self._json(200, {"models": self.rt.ps()})

    def standin_loads(self) -> None:
        """Stand-in only (not Ollama's API): how many times each model was loaded."""
        self._json(200, {"loads": dict(self.rt.loads)})

    def v1_models(self) -> None:
        data = [{"id": m["name"], "object": "model", "created": 0, "owned_by": "library"}
                for m in self.rt.pulled()]
        self._json(200, {"object": "list", "data": data})

    def show(self) -> None:
        """/api/show in Ollama's shape. A stand-in has no GGUF: ``model_info`` comes from
        ``<OLLAMA_MODELS>/standin/model-info/<model>.json`` when a test put one there."""
        name = self._model(self._body())
        info = {"general.architecture": "standin"}
        path = os.path.join(self.rt.dir, "model-info", name.replace("/", "_").replace(":", "_") + ".json")
        if os.path.exists(path):
            with open(path) as f:
                info = json.load(f)
        self._json(200, {"modelfile": f"# stand-in\nFROM {name}\n", "parameters": "", "template": "",
                         "details": {"format": "gguf", "family": info.get("general.architecture")},
                         "model_info": info, "modified_at": now_iso()})

    def embed(self) -> None:
        """/api/embed (Ollama 0.3.4+): ``input`` a string or a list; L2-normalised vectors."""
        body = self._body()
        name = self._model(body)
        inputs = body.get("input", "")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            raise ApiError(400, "invalid input type")
        dims = body.get("dimensions") or EMBED_DIMS
        keep = self._keep_alive(body)
        self.rt.load(name, keep)
        try:
            vecs = [embedding(name, text, int(dims), normalise=True) for text in inputs]
        finally:
            self.rt.release(name, keep)
        self._json(200, {"model": name, "embeddings": vecs, "total_duration": 1000,
                         "load_duration": 0,
                         "prompt_eval_count": sum(len(i.split()) for i in inputs)})

    def embeddings(self) -> None:
        """/api/embeddings (the older endpoint): one ``prompt``, one raw vector."""
        body = self._body()
        name = self._model(body)
        keep = self._keep_alive(body)
        self.rt.load(name, keep)
        try:
            vec = embedding(name, str(body.get("prompt") or ""), EMBED_DIMS, normalise=False)
        finally:
            self.rt.release(name, keep)
        self._json(200, {"embedding": vec})

    def pull(self) -> None:
        body = self._body()
        name = body.get("model") or body.get("name")
        if not name:
            raise ApiError(400, "model is required")
        name = normalize(str(name))
        info = self.rt.pull(name)
        steps = [{"status": "pulling manifest"},
                 {"status": f"pulling {info['digest'][:12]}", "digest": f"sha256:{info['digest']}",
                  "total": info["size"], "completed": info["size"]},
                 {"status": "verifying sha256 digest"}, {"status": "writing manifest"},
                 {"status": "success"}]
        if body.get("stream", True) is False:
            self._json(200, {"status": "success"})
            return
        self._stream_start("application/x-ndjson")
        for step in steps:
            self._chunk(json.dumps(step).encode() + b"\n")
        self._stream_end()

    def _answer(self, body: dict, prompt: str | None, kind: str) -> None:
        name = self._model(body)
        keep = self._keep_alive(body)
        t0 = time.monotonic()
        load_s = self.rt.load(name, keep)
        try:
            created = now_iso()
            timing = {"load_duration": int(load_s * 1e9)}
            if not prompt:  # load (or unload with keep_alive 0) only
                done = {"model": name, "created_at": created, "done": True,
                        "done_reason": "unload" if keep == 0 else "load", **timing}
                done.update({"response": ""} if kind == "generate" else
                            {"message": {"role": "assistant", "content": ""}})
                self._json(200, done)
                return
            if self.rt.answer_s:
                time.sleep(self.rt.answer_s)
            images = sum(len(m.get("images") or []) for m in body.get("messages") or []
                         if isinstance(m, dict)) + len(body.get("images") or [])
            text = answer_text(name, prompt) + (f" ({images} images)" if images else "")
            tools = body.get("tools") if kind == "chat" else None
            calls = [{"function": {"name": tools[0]["function"]["name"], "index": 0,
                                   "arguments": {"text": prompt}}}] if tools else []
            words = [w + " " for w in text.split(" ")] if not calls else []
            if words:
                words[-1] = words[-1].rstrip()
            timing["total_duration"] = int((time.monotonic() - t0) * 1e9)
            final = {"model": name, "created_at": created, "done": True, "done_reason": "stop",
                     "prompt_eval_count": len(prompt.split()), "eval_count": max(1, len(words)),
                     **timing}
            if body.get("stream", True) is False:
                final.update({"response": text} if kind == "generate" else
                             {"message": {"role": "assistant", "content": "" if calls else text,
                                          **({"tool_calls": calls} if calls else {})}})
                self._json(200, final)
                return
            self._stream_start("application/x-ndjson")
            for w in words:
                part = {"model": name, "created_at": now_iso(), "done": False}
                part.update({"response": w} if kind == "generate" else
                            {"message": {"role": "assistant", "content": w}})
                self._chunk(json.dumps(part).encode() + b"\n")
            if calls:  # Ollama streams a tool call as one message before the final one
                part = {"model": name, "created_at": now_iso(), "done": False,
                        "message": {"role": "assistant", "content": "", "tool_calls": calls}}
                self._chunk(json.dumps(part).encode() + b"\n")
            final.update({"response": ""} if kind == "generate" else
                         {"message": {"role": "assistant", "content": ""}})
            self._chunk(json.dumps(final).encode() + b"\n")
            self._stream_end()
        finally:
            self.rt.release(name, keep)

    def generate(self) -> None:
        body = self._body()
        self._answer(body, str(body.get("prompt") or ""), "generate")

    def chat(self) -> None:
        body = self._body()
        self._answer(body, last_user(body.get("messages") or []), "chat")

    def v1_chat(self) -> None:
        body = self._body()
        name = self._model(body)
        keep = self.rt.keep_alive  # Ollama's ChatCompletionRequest has no keep_alive
        prompt = last_user(body.get("messages") or [])
        self.rt.load(name, keep)
        try:
            if self.rt.answer_s:
                time.sleep(self.rt.answer_s)
            text = answer_text(name, prompt)
            cid = "chatcmpl-" + hashlib.sha256(text.encode()).hexdigest()[:12]
            created = int(time.time())
            usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()),
                     "total_tokens": len(prompt.split()) + len(text.split())}
            if not body.get("stream"):
                self._json(200, {"id": cid, "object": "chat.completion", "created": created,
                                 "model": name, "system_fingerprint": "fp_ollama",
                                 "choices": [{"index": 0, "finish_reason": "stop", "message":
                                              {"role": "assistant", "content": text}}],
                                 "usage": usage})
                return
            self._stream_start("text/event-stream")
            base = {"id": cid, "object": "chat.completion.chunk", "created": created,
                    "model": name, "system_fingerprint": "fp_ollama"}
            words = text.split(" ")
            for i, w in enumerate(words):
                delta = {"role": "assistant", "content": w + ("" if i == len(words) - 1 else " ")}
                chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                self._chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self._chunk(b"data: " + json.dumps(last).encode() + b"\n\n")
            self._chunk(b"data: [DONE]\n\n")
            self._stream_end()
        finally:
            self.rt.release(name, keep)


EMBED_DIMS = 8


def embedding(model: str, text: str, dims: int, normalise: bool) -> list[float]:
    """A deterministic vector for (model, text): same input, same vector."""
    raw = hashlib.sha256(f"{model}\n{text}".encode()).digest() * (dims // 32 + 1)
    vec = [(b - 127.5) / 127.5 for b in raw[:dims]]
    if normalise:
        norm = sum(v * v for v in vec) ** 0.5 or 1.0
        vec = [v / norm for v in vec]
    return vec


def last_user(messages: list) -> str:
    """The last user text (an image-only message, as Ollama splits OpenAI parts, has none)."""
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):  # OpenAI content parts
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            if content:
                return str(content)
    return ""


class ApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def serve() -> int:
    host, port = parse_host(os.environ.get("OLLAMA_HOST"))
    try:
        keep = parse_keep_alive(os.environ.get("OLLAMA_KEEP_ALIVE") or "5m")
        max_loaded = int(os.environ.get("OLLAMA_MAX_LOADED_MODELS") or "3")
        load_s = float(os.environ.get("OLLAMA_STANDIN_LOAD_S") or "0")
        answer_s = float(os.environ.get("OLLAMA_STANDIN_ANSWER_S") or "0")
    except ValueError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    models = os.environ.get("OLLAMA_MODELS") or os.path.expanduser("~/.ollama/models")
    Handler.rt = Runtime(os.path.join(models, "standin"), keep, max_loaded, load_s, answer_s)
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    print(f"ollama stand-in {VERSION} listening on {host}:{port} "
          f"(keep_alive={keep}s, max_loaded_models={max_loaded})", file=sys.stderr, flush=True)

    def reaper() -> None:
        while True:
            time.sleep(0.2)
            Handler.rt.expire()

    threading.Thread(target=reaper, daemon=True).start()
    server.serve_forever()
    return 0


def _client(method: str, path: str, body: dict | None = None):
    host, port = parse_host(os.environ.get("OLLAMA_HOST"))
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{host}:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=30)


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "help"
    try:
        if cmd in ("--version", "-v", "version"):
            try:
                with _client("GET", "/api/version") as r:
                    print(f"ollama version is {json.load(r)['version']}")
            except OSError:
                print("Warning: could not connect to a running Ollama instance")
                print(f"Warning: client version is {VERSION}")
            return 0
        if cmd == "serve":
            return serve()
        if cmd == "list":
            with _client("GET", "/api/tags") as r:
                models = json.load(r)["models"]
            print(f"{'NAME':<32}{'ID':<14}{'SIZE':<10}MODIFIED")
            for m in models:
                print(f"{m['name']:<32}{m['digest'][:12]:<14}{m['size'] / 1e9:.1f} GB   {m['modified_at']}")
            return 0
        if cmd == "ps":
            with _client("GET", "/api/ps") as r:
                models = json.load(r)["models"]
            print(f"{'NAME':<32}{'ID':<14}{'SIZE':<10}{'PROCESSOR':<10}UNTIL")
            for m in models:
                print(f"{m['name']:<32}{m['digest'][:12]:<14}{m['size'] / 1e9:.1f} GB   100% GPU  {m['expires_at']}")
            return 0
        if cmd == "pull" and len(argv) == 2:
            with _client("POST", "/api/pull", {"model": argv[1]}) as r:
                for line in r:
                    print(json.loads(line)["status"])
            return 0
    except urllib.error.HTTPError as exc:
        print(f"Error: {json.loads(exc.read() or b'{}').get('error', exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"Error: could not connect to ollama app, is it running? ({exc})", file=sys.stderr)
        return 1
    print("Usage: ollama serve | list | pull MODEL | ps | --version  (hearth lab stand-in)",
          file=sys.stderr)
    return 0 if cmd in ("help", "-h", "--help") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
