#!/usr/bin/env python3
"""STAND-IN for k3s (hearth lab). Not k3s: no kubelet, no containerd, no pods.

It mimics what the deploy touches, so the role's real code paths run in the lab:
`k3s server` / `k3s agent` read /etc/rancher/k3s/config.yaml and refuse keys the
pinned release does not document (the list is injected when the lab publishes
this file); a server writes its token (K10<CA hash>::server:<secret>), a CA and a
serving certificate (openssl), the admin kubeconfig and its packaged manifests,
and serves HTTPS on 6443; an agent checks the server's CA against the token's
hash, registers with the token (refused with a wrong one) and heartbeats; both
tell systemd READY only once they are in the cluster (Type=notify). Every node
writes containerd's config with an `nvidia` runtime when nvidia-container-runtime
is on PATH, like k3s. `k3s kubectl get nodes|node|addons [-o json]`, `label`,
`taint` answer from the server's state. Stdlib + the openssl CLI only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

VERSION = "v1.33.5+k3s1"
KNOWN_KEYS: dict[str, dict[str, str]] = {}  # replaced by the lab's publisher with the recorded key list
ROOT = Path(os.environ.get("K3S_STANDIN_ROOT", "/"))
ETC = ROOT / "etc/rancher/k3s"
DATA = ROOT / "var/lib/rancher/k3s"
SERVER = DATA / "server"
MANIFESTS = SERVER / "manifests"
CONTAINERD = DATA / "agent/etc/containerd/config.toml"
PACKAGED = ("coredns", "local-storage", "metrics-server", "traefik", "ccm", "rolebindings", "runtimes")
GRACE_S = 40.0  # node-monitor-grace-period: no heartbeat for this long = NotReady
HEARTBEAT_S = float(os.environ.get("K3S_STANDIN_HEARTBEAT_S", "5"))


def log(msg: str, level: str = "info") -> None:
    print(f'time="{datetime.now(UTC).isoformat()}" level={level} msg="{msg}"', file=sys.stderr, flush=True)


def fatal(msg: str) -> None:
    log(msg, "fatal")
    raise SystemExit(1)


# --- config.yaml (the block-style subset yaml.safe_dump writes) -------------------------------

def _scalar(text: str) -> object:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].replace("''", "'") if text[0] == "'" else json.loads(text)
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def read_config(path: Path) -> dict[str, object]:
    values: dict[str, object] = {}
    current: str | None = None
    if not path.exists():
        return values
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.lstrip().startswith("- ") and current is not None:
            items = values[current]
            assert isinstance(items, list)
            items.append(_scalar(line.lstrip()[2:]))
        elif ":" in line and not line[0].isspace():
            key, _, rest = line.partition(":")
            current = key.strip()
            values[current] = [] if not rest.strip() else _scalar(rest)
        else:
            fatal(f"{path}:{number}: cannot parse {raw!r}")
    return values


def check_keys(values: dict[str, object], mode: str, path: Path) -> None:
    known = KNOWN_KEYS.get(mode)
    if not known:
        return
    for key in values:
        if key not in known:
            fatal(f"{path}: unknown {mode} configuration key {key!r} (flag provided but not defined: -{key})")


def as_list(value: object) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(i).strip() for i in items if str(i).strip()]


# --- TLS and token ---------------------------------------------------------------------------

def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(tls: Path) -> None:
    tls.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (tls / "server-ca.crt").exists():
        return
    openssl("req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(tls / "server-ca.key"), "-out", str(tls / "server-ca.crt"), "-days", "3650",
            "-subj", f"/CN=k3s-server-ca@{int(time.time())}")
    (tls / "server-ca.key").chmod(0o600)


def make_serving_cert(tls: Path, sans: list[str]) -> None:
    alt = ",".join(("IP:" if re.fullmatch(r"[0-9.]+|[0-9a-f:]+", s) else "DNS:") + s for s in sans)
    ext = tls / "serving.ext"
    ext.write_text(f"subjectAltName={alt}\n")
    openssl("req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(tls / "serving-kube-apiserver.key"), "-out", str(tls / "serving.csr"), "-subj", "/CN=k3s")
    openssl("x509", "-req", "-in", str(tls / "serving.csr"), "-CA", str(tls / "server-ca.crt"),
            "-CAkey", str(tls / "server-ca.key"), "-CAcreateserial", "-days", "3650",
            "-out", str(tls / "serving-kube-apiserver.crt"), "-extfile", str(ext))
    (tls / "serving-kube-apiserver.key").chmod(0o600)


def ca_hash(pem: bytes) -> str:
    return hashlib.sha256(pem).hexdigest()


def split_token(token: str) -> tuple[str | None, str]:
    """(CA hash or None, secret) of a full K10 token or a bare secret."""
    match = re.fullmatch(r"K10([0-9a-f]{64})::[^:]+:(.+)", token)
    return (match[1], match[2]) if match else (None, token)


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


def config_token(values: dict[str, object]) -> str | None:
    if values.get("token"):
        return str(values["token"]).strip()
    if values.get("token-file"):
        return Path(str(values["token-file"])).read_text().strip()
    return os.environ.get("K3S_TOKEN")


# --- systemd ---------------------------------------------------------------------------------

def notify_ready() -> None:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"READY=1", addr)


# --- containerd config (what k3s generates) ----------------------------------------------------

RUNTIMES = {"nvidia": "nvidia-container-runtime", "nvidia-cdi": "nvidia-container-runtime.cdi"}
RUNTIME_DIRS = ("/usr/local/nvidia/toolkit", "/usr/bin", "/usr/local/bin")


def find_runtimes() -> dict[str, str]:
    found = {}
    path = os.environ.get("PATH", "").split(":") + list(RUNTIME_DIRS)
    for name, binary in RUNTIMES.items():
        for folder in path:
            candidate = Path(folder) / binary
            if candidate.is_file() and os.access(candidate, os.X_OK):
                found[name] = str(candidate)
                break
    return found


def write_containerd_config(values: dict[str, object]) -> dict[str, str]:
    runtimes = find_runtimes()
    lines = ["# File generated by k3s (hearth stand-in). DO NOT EDIT.", "version = 3", "",
             "[plugins.'io.containerd.cri.v1.runtime'.containerd]", "  snapshotter = \"overlayfs\""]
    default = values.get("default-runtime")
    if default:
        lines.append(f"  default_runtime_name = \"{default}\"")
    lines += ["", "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'runc']",
              "  runtime_type = \"io.containerd.runc.v2\""]
    for name, binary in runtimes.items():
        lines += ["", f"[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'{name}']",
                  "  runtime_type = \"io.containerd.runc.v2\"",
                  f"[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'{name}'.options]",
                  f"  BinaryName = \"{binary}\"", "  SystemdCgroup = true"]
    CONTAINERD.parent.mkdir(parents=True, exist_ok=True)
    CONTAINERD.write_text("\n".join(lines) + "\n")
    if runtimes:
        log(f"Found nvidia container runtime(s): {', '.join(sorted(runtimes))}")
    return runtimes


def gpu_count() -> int:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return 0
    out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    return len([line for line in out.stdout.splitlines() if line.startswith("GPU ")]) if out.returncode == 0 else 0


# --- the node this process runs ----------------------------------------------------------------

def parse_taint(item: str) -> dict[str, str]:
    """key[=value]:Effect as a Node taint."""
    head, _, effect = item.rpartition(":")
    key, _, value = head.partition("=")
    return {"key": key, "value": value, "effect": effect} if value else {"key": key, "effect": effect}


def node_record(values: dict[str, object], mode: str) -> dict[str, object]:
    name = str(values.get("node-name") or socket.gethostname())
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
              "kubernetes.io/arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, "amd64"),
              "node.kubernetes.io/instance-type": "k3s"}
    if mode == "server":
        labels["node-role.kubernetes.io/control-plane"] = "true"
        labels["node-role.kubernetes.io/master"] = "true"
        if values.get("cluster-init") or values.get("server"):
            labels["node-role.kubernetes.io/etcd"] = "true"
    for item in as_list(values.get("node-label")):
        key, _, value = item.partition("=")
        labels[key] = value
    taints = [parse_taint(item) for item in as_list(values.get("node-taint"))]
    ips = as_list(values.get("node-ip"))
    runtimes = write_containerd_config(values)
    return {"name": name, "labels": labels, "taints": taints, "ip": ips[0] if ips else "",
            "runtimes": sorted(runtimes), "gpus": gpu_count() if "nvidia" in runtimes else 0}


# --- server state and API ------------------------------------------------------------------------

class State:
    """Nodes (registered with labels/taints, last heartbeat) in SERVER/db/nodes.json."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.nodes: dict[str, dict[str, object]] = json.loads(path.read_text()) if path.exists() else {}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.nodes, indent=1, sort_keys=True))
        tmp.replace(self.path)

    def register(self, node: dict[str, object]) -> None:
        with self.lock:
            now = time.time()
            old = self.nodes.get(str(node["name"]))
            if old is None:  # like the kubelet: labels and taints are applied when the node registers
                entry = dict(node, created=now)
            else:
                entry = dict(old, ip=node["ip"], runtimes=node["runtimes"], gpus=node["gpus"])
            entry["heartbeat"] = now
            entry["started"] = now
            self.nodes[str(node["name"])] = entry
            self.save()

    def heartbeat(self, name: str) -> bool:
        with self.lock:
            if name not in self.nodes:
                return False
            self.nodes[name]["heartbeat"] = time.time()
            self.save()
            return True

    def edit(self, name: str, labels: dict[str, str | None], taints: list[dict[str, str]],
             untaint: list[str]) -> bool:
        with self.lock:
            node = self.nodes.get(name)
            if node is None:
                return False
            node_labels = dict(node["labels"])  # type: ignore[arg-type]
            for key, value in labels.items():
                if value is None:
                    node_labels.pop(key, None)
                else:
                    node_labels[key] = value
            kept = [t for t in node["taints"] if t["key"] not in untaint  # type: ignore[union-attr]
                    and t["key"] not in {n["key"] for n in taints}]
            node["labels"], node["taints"] = node_labels, kept + taints
            self.save()
            return True


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_object(node: dict[str, object], device_plugin: bool) -> dict[str, object]:
    ready = time.time() - float(node["heartbeat"]) < GRACE_S  # type: ignore[arg-type]
    allocatable = {"cpu": str(os.cpu_count() or 1), "memory": "8Gi", "pods": "110"}
    if device_plugin and node.get("gpus"):
        allocatable["nvidia.com/gpu"] = str(node["gpus"])
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node["name"], "labels": node["labels"],
                     "creationTimestamp": _iso(float(node["created"]))},  # type: ignore[arg-type]
        "spec": {"taints": node["taints"]} if node["taints"] else {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown",
                            "reason": "KubeletReady" if ready else "NodeStatusUnknown",
                            "lastHeartbeatTime": _iso(float(node["heartbeat"])),  # type: ignore[arg-type]
                            "lastTransitionTime": _iso(float(node["started"]))}],  # type: ignore[arg-type]
            "addresses": [{"type": "InternalIP", "address": node["ip"]}, {"type": "Hostname", "address": node["name"]}],
            "allocatable": allocatable, "capacity": allocatable,
            "nodeInfo": {"kubeletVersion": VERSION, "containerRuntimeVersion": "containerd://2.0.5-k3s2 (stand-in)",
                         "architecture": node["labels"]["kubernetes.io/arch"],  # type: ignore[index]
                         "operatingSystem": "linux"},
            "runtimeHandlers": [{"name": r} for r in ["", "runc", *node.get("runtimes", [])]],  # type: ignore[misc]
        },
    }


def addons() -> list[dict[str, object]]:
    """One Addon per manifest file, as k3s's deploy controller makes them."""
    items = []
    for path in sorted(MANIFESTS.glob("*.y*ml")) if MANIFESTS.exists() else []:
        items.append({"apiVersion": "k3s.cattle.io/v1", "kind": "Addon",
                      "metadata": {"name": path.stem, "namespace": "kube-system"},
                      "spec": {"source": str(path), "checksum": hashlib.sha256(path.read_bytes()).hexdigest()}})
    return items


def has_device_plugin() -> bool:
    return any("nvidia-device-plugin" in Path(str(a["spec"]["source"])).read_text()  # type: ignore[index]
               for a in addons())


class Api(BaseHTTPRequestHandler):
    state: State
    secret: str
    admin: str
    ca_pem: bytes
    upstream: str | None = None  # a joining server forwards the API to the first server
    upstream_token: str = ""
    upstream_ca: bytes = b""

    def log_message(self, fmt: str, *args: object) -> None:
        pass

    def send(self, code: int, body: object) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorised(self, admin_only: bool = False) -> bool:
        bearer = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        node = split_token(self.headers.get("X-K3s-Token", ""))[1]
        if bearer and secrets.compare_digest(bearer, self.admin):
            return True
        return not admin_only and bool(node) and secrets.compare_digest(node, self.secret)

    def body(self) -> dict[str, object]:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")

    def forward(self, method: str) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length", "0"))) if method == "POST" else None
        req = urllib.request.Request(f"{self.upstream}{self.path}", data=data, method=method,
                                     headers={"X-K3s-Token": self.upstream_token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10, context=client_context(self.upstream_ca)) as resp:
                self.send(resp.status, resp.read())
        except urllib.error.HTTPError as exc:
            self.send(exc.code, exc.read())
        except OSError as exc:
            self.send(502, {"message": f"first server unreachable: {exc}"})

    def do_GET(self) -> None:
        if self.path == "/cacerts":
            return self.send(200, self.ca_pem)
        if self.path == "/ping":
            return self.send(200, b"pong")
        if not self.authorised():
            return self.send(401, {"message": "Unauthorized"})
        if self.upstream:
            return self.forward("GET")
        if self.path == "/v1-k3s/server-bootstrap":
            tls = SERVER / "tls"
            return self.send(200, {"ca": (tls / "server-ca.crt").read_text(),
                                   "ca_key": (tls / "server-ca.key").read_text(), "admin": self.admin})
        plugin = has_device_plugin()
        with self.state.lock:
            nodes = {n: node_object(v, plugin) for n, v in self.state.nodes.items()}
        if self.path == "/api/v1/nodes":
            return self.send(200, {"apiVersion": "v1", "kind": "NodeList", "items": list(nodes.values())})
        if self.path.startswith("/api/v1/nodes/"):
            name = self.path.rsplit("/", 1)[1]
            if name not in nodes:
                return self.send(404, {"message": f'nodes "{name}" not found'})
            return self.send(200, nodes[name])
        if self.path == "/v1-k3s/addons":
            return self.send(200, {"apiVersion": "v1", "kind": "List", "items": addons()})
        return self.send(404, {"message": "not found"})

    def do_POST(self) -> None:
        if not self.authorised(admin_only=self.path == "/v1-k3s/edit"):
            log(f"token rejected from {self.client_address[0]} for {self.path}", "warning")
            return self.send(401, {"message": "Unauthorized"})
        if self.upstream:
            return self.forward("POST")
        body = self.body()
        if self.path == "/v1-k3s/register":
            self.state.register(body)
            log(f"node {body['name']} registered from {self.client_address[0]}")
            return self.send(200, {"ok": True})
        if self.path == "/v1-k3s/heartbeat":
            ok = self.state.heartbeat(str(body["name"]))
            return self.send(200 if ok else 404, {"ok": ok})
        if self.path == "/v1-k3s/edit":
            ok = self.state.edit(str(body["name"]), body.get("labels", {}), body.get("taints", []),  # type: ignore[arg-type]
                                 body.get("untaint", []))  # type: ignore[arg-type]
            return self.send(200 if ok else 404, {"ok": ok})
        return self.send(404, {"message": "not found"})


def client_context(ca_pem: bytes | None) -> ssl.SSLContext:
    if not ca_pem:
        return ssl._create_unverified_context()
    return ssl.create_default_context(cadata=ca_pem.decode())


def call(url: str, path: str, token: str, ca_pem: bytes, body: dict[str, object] | None = None,
         bearer: str | None = None) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    else:
        headers["X-K3s-Token"] = token
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10, context=client_context(ca_pem)) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def fetch_ca(url: str, token: str) -> bytes:
    """The server's CA, checked against the token's hash (a K10 token pins the CA)."""
    with urllib.request.urlopen(url + "/cacerts", timeout=10, context=client_context(None)) as resp:
        pem = resp.read()
    expected, _ = split_token(token)
    if expected is not None and ca_hash(pem) != expected:
        raise PermissionError(f"token CA hash does not match the server CA hash at {url}")
    return pem


# --- server / agent main loops --------------------------------------------------------------------

KUBECONFIG_TEXT = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: https://127.0.0.1:{port}
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {{}}
users:
- name: default
  user:
    token: {admin}
"""


def retry(what: str, attempt: object, wait_s: float = 2.0) -> object:
    """Run ``attempt()`` until it returns something; log each failure (as k3s does, forever)."""
    while True:
        try:
            result = attempt()  # type: ignore[operator]
            if result is not None:
                return result
        except (OSError, PermissionError, ValueError) as exc:
            log(f"{what}: {exc}", "error")
        time.sleep(wait_s)


def join(url: str, token: str, path: str, body: dict[str, object] | None = None) -> tuple[bytes, dict[str, object]]:
    """Fetch + check the CA, then call ``path`` with the token until the server accepts it."""
    def attempt() -> tuple[bytes, dict[str, object]] | None:
        ca = fetch_ca(url, token)
        code, answer = call(url, path, token, ca, body)
        if code == 401:
            log(f"Failed to validate connection to cluster at {url}: token rejected (401 Unauthorized)", "error")
            return None
        if code != 200:
            log(f"{url}{path}: {code} {answer}", "error")
            return None
        return ca, answer
    return retry(f"joining {url}", attempt)  # type: ignore[return-value]


def packaged_manifests(values: dict[str, object]) -> None:
    disabled = set(as_list(values.get("disable")))
    MANIFESTS.mkdir(parents=True, exist_ok=True)
    for component in PACKAGED:
        path = MANIFESTS / f"{component}.yaml"
        if component in disabled:
            path.unlink(missing_ok=True)
        elif not path.exists():
            path.write_text(f"# k3s packaged component {component} (hearth stand-in: applies no objects)\n")


def serve(values: dict[str, object], handler: type[Api], port: int) -> None:
    tls = SERVER / "tls"
    ips = as_list(values.get("node-ip")) + as_list(values.get("advertise-address"))
    sans = list(dict.fromkeys(["127.0.0.1", "localhost", socket.gethostname(), *ips, *as_list(values.get("tls-san"))]))
    make_serving_cert(tls, sans)
    httpd = ThreadingHTTPServer((str(values.get("bind-address") or "0.0.0.0"), port), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls / "serving-kube-apiserver.crt", tls / "serving-kube-apiserver.key")
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    log(f"Running kube-apiserver (stand-in) on :{port}")


def run_server(values: dict[str, object], path: Path) -> None:
    check_keys(values, "server", path)
    tls = SERVER / "tls"
    port = int(values.get("https-listen-port") or 6443)  # type: ignore[arg-type]
    given = config_token(values)
    upstream = str(values["server"]) if values.get("server") else None
    node = node_record(values, "server")
    handler = type("Handler", (Api,), {})
    if upstream:
        if not given:
            fatal("a joining server needs token or token-file")
        ca, boot = join(upstream, str(given), "/v1-k3s/server-bootstrap")
        tls.mkdir(parents=True, exist_ok=True, mode=0o700)
        (tls / "server-ca.crt").write_text(str(boot["ca"]))
        write_private(tls / "server-ca.key", str(boot["ca_key"]))
        admin, secret = str(boot["admin"]), split_token(str(given))[1]
        handler.upstream, handler.upstream_token, handler.upstream_ca = upstream, str(given), ca
    else:
        make_ca(tls)
        cred = SERVER / "cred" / "admin-token"
        if not cred.exists():
            write_private(cred, secrets.token_hex(16))
        admin = cred.read_text().strip()
        old = SERVER / "token"
        secret = (split_token(given)[1] if given else
                  split_token(old.read_text().strip())[1] if old.exists() else secrets.token_hex(16))
    ca_pem = (tls / "server-ca.crt").read_bytes()
    token = f"K10{ca_hash(ca_pem)}::server:{secret}"
    write_private(SERVER / "token", token + "\n")
    write_private(SERVER / "node-token", token + "\n")
    handler.state, handler.secret = State(SERVER / "db" / "nodes.json"), secret
    handler.admin, handler.ca_pem = admin, ca_pem
    mode = int(str(values.get("write-kubeconfig-mode") or "0600"), 8)
    kubeconfig = ETC / "k3s.yaml"
    write_private(kubeconfig, KUBECONFIG_TEXT.format(ca=base64.b64encode(ca_pem).decode(), port=port, admin=admin))
    kubeconfig.chmod(mode)
    packaged_manifests(values)
    serve(values, handler, port)
    if upstream:
        join(upstream, token, "/v1-k3s/register", node)
    else:
        handler.state.register(node)
    log(f"k3s server is up (node {node['name']})")
    notify_ready()
    while True:
        time.sleep(HEARTBEAT_S)
        if upstream:
            call(upstream, "/v1-k3s/heartbeat", token, handler.upstream_ca, {"name": node["name"]})
        else:
            handler.state.heartbeat(str(node["name"]))


def run_agent(values: dict[str, object], path: Path) -> None:
    check_keys(values, "agent", path)
    url = str(values.get("server") or os.environ.get("K3S_URL") or "")
    token = config_token(values)
    if not url or not token:
        fatal("an agent needs server and token (or token-file)")
    node = node_record(values, "agent")
    ca, _ = join(url, str(token), "/v1-k3s/register", node)
    log(f"k3s agent is up: node {node['name']} registered with {url}")
    notify_ready()
    while True:
        time.sleep(HEARTBEAT_S)
        try:
            code, _ = call(url, "/v1-k3s/heartbeat", str(token), ca, {"name": node["name"]})
            if code == 404:
                call(url, "/v1-k3s/register", str(token), ca, node)
        except OSError as exc:
            log(f"heartbeat to {url}: {exc}", "warning")


# --- k3s kubectl ----------------------------------------------------------------------------------

def kubeconfig() -> tuple[str, bytes, str]:
    path = Path(os.environ.get("KUBECONFIG") or ETC / "k3s.yaml")
    text = path.read_text()
    server = re.search(r"server: (\S+)", text)
    ca = re.search(r"certificate-authority-data: (\S+)", text)
    token = re.search(r"token: (\S+)", text)
    if not (server and ca and token):
        fatal(f"{path}: not a kubeconfig this stand-in wrote")
    return server[1], base64.b64decode(ca[1]), token[1]  # type: ignore[index]


def table(nodes: list[dict[str, object]]) -> str:
    rows = ["NAME\tSTATUS\tROLES\tVERSION"]
    for n in nodes:
        labels = n["metadata"]["labels"]  # type: ignore[index]
        roles = ",".join(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")) or "<none>"
        ready = n["status"]["conditions"][0]["status"] == "True"  # type: ignore[index]
        rows.append(f"{n['metadata']['name']}\t{'Ready' if ready else 'NotReady'}\t{roles}\t{VERSION}")  # type: ignore[index]
    return "\n".join(rows)


def kubectl(args: list[str]) -> int:
    url, ca, admin = kubeconfig()
    output = args[args.index("-o") + 1] if "-o" in args else ""
    words = [a for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] not in ("-o", "-n"))]
    verb, rest = (words[0], words[1:]) if words else ("", [])
    if verb == "version":
        print(f"Client Version: {VERSION}\nServer Version: {VERSION}")
        return 0
    if verb == "get" and rest and rest[0] in ("nodes", "node", "no"):
        path = "/api/v1/nodes" + (f"/{rest[1]}" if len(rest) > 1 else "")
        code, body = call(url, path, "", ca, bearer=admin)
        if code != 200:
            print(f"Error from server (NotFound): {body.get('message')}", file=sys.stderr)
            return 1
        items = body["items"] if body.get("kind") == "NodeList" else [body]
        print(json.dumps(body, indent=2) if output == "json" else table(items))  # type: ignore[arg-type]
        return 0
    if verb == "get" and rest and rest[0] in ("addons", "addon"):
        code, body = call(url, "/v1-k3s/addons", "", ca, bearer=admin)
        items = body["items"]
        print(json.dumps(body, indent=2) if output == "json" else
              "\n".join(["NAMESPACE\tNAME\tSOURCE"] + [f"kube-system\t{a['metadata']['name']}\t{a['spec']['source']}"  # type: ignore[index]
                         for a in items]))  # type: ignore[union-attr]
        return 0
    if verb in ("label", "taint") and len(rest) >= 3 and rest[0] in ("node", "nodes"):
        name, changes = rest[1], rest[2:]
        labels: dict[str, str | None] = {}
        taints, untaint = [], []
        for change in changes:
            if verb == "label":
                key, eq, value = change.partition("=")
                labels[key.rstrip("-")] = value if eq else None
            elif change.endswith("-"):
                untaint.append(change[:-1].split(":")[0].split("=")[0])
            else:
                taints.append(parse_taint(change))
        code, _ = call(url, "/v1-k3s/edit", "", ca, {"name": name, "labels": labels, "taints": taints,
                                                     "untaint": untaint}, bearer=admin)
        print(f"node/{name} {'labeled' if verb == 'label' else 'modified'}" if code == 200 else
              f'Error from server (NotFound): nodes "{name}" not found')
        return 0 if code == 200 else 1
    print(f"k3s kubectl (hearth stand-in): {' '.join(args)} is not implemented", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("--version", "-v", "version"):
        print(f"k3s version {VERSION} (hearth stand-in)\ngo version go1.24.6 (stand-in)")
        return 0
    command, args = argv[0], argv[1:]
    if command == "kubectl":
        return kubectl(args)
    if command in ("server", "agent"):
        path = Path(os.environ.get("K3S_CONFIG_FILE") or ETC / "config.yaml")
        if "--config" in args:
            path = Path(args[args.index("--config") + 1])
        values = read_config(path)
        (run_server if command == "server" else run_agent)(values, path)
        return 0
    print(f"k3s (hearth stand-in): unknown command {command}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
