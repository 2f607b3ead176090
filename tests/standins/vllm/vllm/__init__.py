"""STAND-IN for vLLM (hearth lab). Not vLLM: it loads no model and uses no GPU.

It mimics what the deploy and the gateway rely on, so their real code paths run
in the lab: `vllm serve MODEL [flags]` parses its arguments with the recorded
argument list of the pinned vLLM release (``flags.json``, the same file hearth's
validation uses), so an unknown or mistyped flag fails as argparse fails in vLLM;
it refuses to start when the KV-cache check vLLM does at start-up fails (the
planner's arithmetic, ``memory.json``); it becomes ready after
VLLM_STANDIN_READY_S seconds (default 2; real vLLM takes minutes) and only then
listens, like vLLM; it serves ``/health``, ``/version``, ``/v1/models``,
``/v1/chat/completions`` (SSE streaming too), ``/v1/completions`` with
deterministic text and ``/metrics`` (vllm/metrics.py); it reads the Hugging Face
token file (``HF_TOKEN_PATH``) at start as huggingface_hub would. The stand-in's
card has VLLM_STANDIN_GPU_MEMORY_GIB GiB (default 16). Standard library only:
Debian 12's python3.11.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from vllm.metrics import CONTENT_TYPE, Stats

STANDIN = True
__version__ = "0.0.0"  # replaced by the version the lab builds the wheel with


def _data(name: str) -> Any:
    return json.loads(resources.files(__package__).joinpath(name).read_text())


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None


def _json_or_str(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _int(text: str) -> int:
    """vLLM's human-readable ints: 32768, 32k, 1M (k=1000, K=1024)."""
    units = {"k": 10**3, "m": 10**6, "g": 10**9, "K": 2**10, "M": 2**20, "G": 2**30}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


TYPES = {"int": _int, "float": float, "str": str, "json": _json_value, "json_or_str": _json_or_str}


def build_parser(recorded: dict[str, Any]) -> argparse.ArgumentParser:
    """The `vllm serve` parser from the recorded argument list."""
    parser = argparse.ArgumentParser(prog="vllm serve")
    parser.add_argument("model_tag", nargs="?")
    aliases: dict[str, list[str]] = {}
    for alias, name in recorded.get("aliases", {}).items():
        if not alias.startswith("--no-"):
            aliases.setdefault(name, []).append(alias)
    for name, spec in recorded["flags"].items():
        names = [f"--{name}", *aliases.get(name, [])]
        kind = spec["kind"]
        if kind == "bool":
            parser.add_argument(*names, dest=spec["dest"], action=argparse.BooleanOptionalAction, default=None)
        elif kind == "flag":
            parser.add_argument(*names, dest=spec["dest"], action="store_true")
        else:
            kwargs: dict[str, Any] = {"dest": spec["dest"], "type": TYPES[kind]}
            if spec.get("choices"):
                kwargs["choices"] = [TYPES[kind](c) if kind in ("int", "float") else c for c in spec["choices"]]
            if spec.get("nargs"):
                kwargs["nargs"] = spec["nargs"]
            parser.add_argument(*names, **kwargs)
    return parser


def planned_quant(model: str, quantization: str | None) -> str:
    """The planner's weight format for a checkpoint (real vLLM reads it from the checkpoint)."""
    name = model.lower()
    method = (quantization or "").lower()
    if "awq" in method or "awq" in name:
        return "awq"
    if "gptq" in method or "gptq" in name:
        return "gptq"
    if "fp8" in method or "fp8" in name:
        return "fp8"
    if "int4" in name or "w4a16" in name:
        return "int4"
    return "fp16"


def kv_pool(args: argparse.Namespace, memory: dict[str, Any], gpu_gib: float) -> tuple[float, float] | None:
    """(KV pool GiB left in its share of the card, GiB one max-model-len sequence needs),
    by the planner's arithmetic; None when the model is unknown here."""
    key = args.model_tag.lower().rsplit("/", 1)[-1]
    while key not in memory["aliases"] and "-" in key:  # Qwen2.5-1.5B-Instruct-Foo -> qwen2.5-1.5b-instruct
        key = key.rsplit("-", 1)[0]
    arch = memory["catalogue"].get(memory["aliases"].get(key, key))
    if arch is None:
        return None
    quant = planned_quant(args.model_tag, args.quantization)
    bits = memory["bits_per_weight"][quant]
    body = arch["params_b"] * bits / 8
    if quant in memory["sixteen_bit_embeddings"]:
        body = (arch["params_b"] - arch["embed_params_b"]) * bits / 8 + arch["embed_params_b"] * 2
    weights = (body + arch["vision_params_b"] * 2) * 1e9 / 2**30
    context = args.max_model_len or 32768
    dtype = args.kv_cache_dtype or "auto"
    kv_bytes = memory["kv_bytes"]["fp8" if dtype.startswith("fp8") else {"bfloat16": "bf16"}.get(dtype, "auto")]
    full = arch["layers"] - arch["sliding_window_layers"]
    window = min(context, arch["sliding_window"] or context)
    tokens = full * context + arch["sliding_window_layers"] * window
    one_sequence = 2 * arch["kv_heads"] * arch["head_dim"] * kv_bytes * tokens / 2**30
    utilization = args.gpu_memory_utilization if args.gpu_memory_utilization is not None else 0.9
    return utilization * gpu_gib - weights - memory["overhead_gb"], one_sequence


def memory_check(args: argparse.Namespace, memory: dict[str, Any], gpu_gib: float) -> str | None:
    """vLLM's start-up check: the KV pool holds one max-model-len sequence. None when
    it does, or when the model is unknown here."""
    sizes = kv_pool(args, memory, gpu_gib)
    if sizes is None or sizes[0] >= sizes[1]:
        return None
    pool, one_sequence = sizes
    context = args.max_model_len or 32768
    longest = int(max(pool, 0) / one_sequence * context)
    return (
        f"ValueError: To serve at least one request with the models's max seq len ({context}), "
        f"({one_sequence:.2f} GiB KV cache is needed, which is larger than the available KV cache "
        f"memory ({max(pool, 0):.2f} GiB). Based on the available memory, the estimated maximum model "
        f"length is {longest}. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` "
        "when initializing the engine."
    )


def kv_tokens(args: argparse.Namespace, memory: dict[str, Any], gpu_gib: float) -> int:
    """Tokens the KV pool holds (one max-model-len sequence when the model is unknown here)."""
    context = args.max_model_len or 32768
    sizes = kv_pool(args, memory, gpu_gib)
    return context if sizes is None else int(sizes[0] / sizes[1] * context)


def show_hidden_metrics(version: str | None) -> bool:
    """vLLM's --show-hidden-metrics-for-version: only the previous minor release (0.10 for 0.11.x)."""
    major, minor = (int(p) for p in __version__.split(".")[:2])
    return version is not None and version == f"{major}.{minor - 1}"


def answer_text(served: str, messages: list[dict[str, Any]]) -> str:
    last = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = last.get("content", "")
    if isinstance(content, list):
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:8]
    return f"[vllm stand-in {served} #{digest}] you said: {content}"


class Handler(BaseHTTPRequestHandler):
    server_version = "uvicorn"
    served: str = ""
    model: str = ""
    max_model_len: int = 0
    api_keys: tuple[str, ...] = ()
    stats: Stats
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None  # never log requests (real vLLM at WARNING does not either)

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str) -> None:
        self._json(status, {"error": {"message": message, "type": kind, "param": None, "code": status}})

    def _authorised(self) -> bool:
        if not self.api_keys or not self.path.startswith("/v1"):
            return True
        given = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if any(hmac.compare_digest(given, key) for key in self.api_keys):
            return True
        self._json(401, {"error": "Unauthorized"})
        return False

    def do_GET(self) -> None:
        if not self._authorised():
            return
        if self.path == "/health":
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/metrics":  # vLLM serves it outside --api-key, as here
            data = self.stats.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == "/version":
            self._json(200, {"version": __version__})
        elif self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{
                "id": self.served, "object": "model", "created": int(time.time()), "owned_by": "vllm",
                "root": self.model, "parent": None, "max_model_len": self.max_model_len}]})  # fmt: skip
        else:
            self._json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        if not self._authorised():
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._error(400, "invalid JSON body", "BadRequestError")
        if self.path not in ("/v1/chat/completions", "/v1/completions"):
            return self._json(404, {"detail": "Not Found"})
        if body.get("model") != self.served:
            return self._error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        chat = self.path == "/v1/chat/completions"
        messages = body.get("messages") if chat else [{"role": "user", "content": str(body.get("prompt", ""))}]
        if not isinstance(messages, list):
            return self._error(400, "messages must be a list", "BadRequestError")
        text = answer_text(self.served, messages)
        created = int(time.time())
        ident = ("chatcmpl-" if chat else "cmpl-") + hashlib.sha256(text.encode()).hexdigest()[:24]
        words = text.split(" ")
        usage = {"prompt_tokens": len(json.dumps(messages).split()), "completion_tokens": len(words)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        kind = "chat.completion" if chat else "text_completion"
        tokens = usage["total_tokens"]
        self.stats.start(json.dumps(messages, sort_keys=True), usage["prompt_tokens"], tokens)
        started, reason = time.monotonic(), "abort"
        try:
            self._answer(chat, body, text, ident, kind, created, usage)
            reason = "stop"
        finally:
            self.stats.finish(usage["prompt_tokens"], usage["completion_tokens"], tokens,
                              time.monotonic() - started, reason)

    def _answer(self, chat: bool, body: dict[str, Any], text: str, ident: str, kind: str, created: int,
                usage: dict[str, int]) -> None:
        words = text.split(" ")
        if not body.get("stream"):
            choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": None}
            choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
            self._json(200, {"id": ident, "object": kind, "created": created, "model": self.served,
                             "choices": [choice], "usage": usage})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pieces = [("role", "assistant")] if chat else []
        pieces += [("content", w if i == 0 else " " + w) for i, w in enumerate(words)]
        for i, (field, value) in enumerate(pieces):
            delta = {field: value} if chat else None
            choice = {"index": 0, "finish_reason": None, "logprobs": None}
            choice.update({"delta": delta} if chat else {"text": value})
            self._chunk({"id": ident, "object": kind + ".chunk" if chat else kind, "created": created,
                         "model": self.served, "choices": [choice]})
            if i == len(pieces) - 1:
                done = {"index": 0, "finish_reason": "stop", "logprobs": None}
                done.update({"delta": {}} if chat else {"text": ""})
                self._chunk({"id": ident, "object": kind + ".chunk" if chat else kind, "created": created,
                             "model": self.served, "choices": [done]})
        self._send(b"data: [DONE]\n\n")
        self._send(b"")

    def _chunk(self, event: dict[str, Any]) -> None:
        self._send(b"data: " + json.dumps(event).encode() + b"\n\n")

    def _send(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def serve(argv: list[str]) -> int:
    args = build_parser(_data("flags.json")).parse_args(argv)
    if not args.model_tag:
        print("vllm serve: error: the model is required", file=sys.stderr)
        return 2
    if args.gpu_memory_utilization is not None and not 0 < args.gpu_memory_utilization <= 1:
        print(f"ValueError: GPU memory utilization must be within (0, 1]. Got {args.gpu_memory_utilization}.",
              file=sys.stderr)
        return 1
    gpu_gib = float(os.environ.get("VLLM_STANDIN_GPU_MEMORY_GIB", "16"))
    memory = _data("memory.json")
    problem = memory_check(args, memory, gpu_gib)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    read_hf_token()
    served = (args.served_model_name or [args.model_tag])[0]
    ready_s = float(os.environ.get("VLLM_STANDIN_READY_S", "2"))
    time.sleep(max(0.0, ready_s))  # "loading the model": real vLLM listens only once the engine is up
    handler = type("BoundHandler", (Handler,), {
        "served": served, "model": args.model_tag, "max_model_len": args.max_model_len or 32768,
        "stats": Stats(served, kv_tokens(args, memory, gpu_gib), args.enable_prefix_caching is not False,
                       show_hidden_metrics(args.show_hidden_metrics_for_version)),
        "api_keys": tuple(args.api_key or ([os.environ["VLLM_API_KEY"]] if os.environ.get("VLLM_API_KEY") else [])),
    })  # fmt: skip
    host = args.host or "0.0.0.0"
    httpd = ThreadingHTTPServer((host, args.port or 8000), handler)
    if os.environ.get("VLLM_LOGGING_LEVEL", "INFO").upper() in ("DEBUG", "INFO"):
        print(f"INFO: vLLM stand-in serving {served} on http://{host}:{args.port}", file=sys.stderr)
    httpd.serve_forever()
    return 0


def read_hf_token() -> bool:
    """Read the Hugging Face token as huggingface_hub does when vLLM fetches the model's
    config at start-up: ``HF_TOKEN_PATH``'s file, a missing file meaning no token, an
    unreadable one (a sandbox or owner mistake) raising. The token is never printed."""
    path = os.environ.get("HF_TOKEN_PATH")
    if not path:
        return False
    try:
        with open(path) as handle:
            return bool(handle.read().strip())
    except FileNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["--version"], ["-v"]):
        print(__version__)
        return 0
    if argv[:1] != ["serve"]:
        print("usage: vllm {serve,--version} ... (hearth lab stand-in)", file=sys.stderr)
        return 2
    return serve(argv[1:])
