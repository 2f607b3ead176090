"""k3s: a verified binary, the join token passed host to host, restarts one node at a time."""

from __future__ import annotations

import hashlib
import shlex
import time
from pathlib import Path

import gevent
from gevent.lock import BoundedSemaphore
from pyinfra import host, state
from pyinfra.api import FileUploadCommand, FunctionCommand, OperationError, StringCommand, operation
from pyinfra.api.exceptions import ConnectError
from pyinfra.api.host import Host

from hearth.facts.k3s import FileDigest, K3sNode, K3sNodes
from hearth.inventory import resolve_secret
from hearth.operations.files import staged_upload

SERVER_TOKEN = "/var/lib/rancher/k3s/server/token"


def peer(name: str) -> Host:
    """The pyinfra host of inventory host ``name``."""
    for candidate in state.inventory:
        if candidate.data.get("hearth_host", candidate.name) == name:
            return candidate
    raise OperationError(f"k3s: host {name} is not in the pyinfra inventory")


def run_on(target: Host, command: str, timeout: float = 30) -> tuple[bool, str]:
    """Run ``command`` on ``target`` (sudo when its data says so); output is never printed.

    A target outside this run (``pyinfra --limit agent``, which still needs the first
    server's join token) is connected first; one that cannot be reached is an error
    naming it."""
    if not target.connected:
        try:
            target.connect(reason="k3s: read from a peer", show_errors=False, raise_exceptions=True)
        except ConnectError as exc:
            raise OperationError(f"k3s: cannot reach {target.name} ({exc})") from exc
    ok, output = target.run_shell_command(StringCommand(command), print_output=False, print_input=False,
                                          _sudo=bool(target.data.get("_sudo")), _timeout=timeout)
    return ok, output.stdout


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@operation()
def verified_file(src: str, sha256: str, dest: str, mode: str = "0755", local: str | None = None):
    """
    Put the release file ``src`` (a URL, or ``local``: a file on the deploying machine)
    at ``dest`` only if its sha256 is ``sha256``.

    The download (or upload) goes to ``<dest>.hearth-new`` and is checked on the host
    before it replaces ``dest``: a wrong checksum or an unreachable source fails with
    the reason and changes nothing (the candidate is removed). No change when
    ``dest`` already has this checksum and mode.

    **Example:**

    .. code:: python

        k3s.verified_file(
            name="k3s binary",
            src="https://github.com/k3s-io/k3s/releases/download/v1.33.5+k3s1/k3s",
            sha256="<64 hex digits from sha256sum-amd64.txt>",
            dest="/usr/local/bin/k3s",
        )
    """
    if local is not None:
        if not Path(local).is_file():
            raise OperationError(f"air-gap file {local} does not exist on the deploying machine; nothing was changed")
        got = _sha256(local)
        if got != sha256:
            raise OperationError(f"{local} has sha256 {got}, expected {sha256}: refused, nothing was changed")
    current = host.get_fact(FileDigest, path=dest)
    qdest = shlex.quote(dest)
    if current and current["sha256"] == sha256:
        if current["mode"] != int(mode.lstrip("0") or "0"):
            yield StringCommand("chmod", mode, qdest)
        else:
            host.noop(f"{dest} is the verified release ({sha256[:12]})")
        return
    candidate = shlex.quote(f"{dest}.hearth-new")
    where = local or src
    yield StringCommand(f"mkdir -p {shlex.quote(str(Path(dest).parent))} && rm -f {candidate}")
    if local is not None:
        yield FileUploadCommand(local, f"{dest}.hearth-new", remote_temp_filename=host.get_temp_filename(dest))
    else:
        yield StringCommand(
            f"curl -sSLf --connect-timeout 10 --retry 2 -o {candidate} {shlex.quote(src)}"
            f" || {{ rm -f {candidate}; echo {shlex.quote(f'hearth: cannot download {src}: nothing was changed')} >&2;"
            " exit 1; }"
        )
    message = shlex.quote(f"hearth: {where} has the wrong sha256 (expected {sha256}): refused, nothing was changed")
    yield StringCommand(
        f"got=$(sha256sum {candidate} | cut -d' ' -f1); if [ \"$got\" != {sha256} ]; then rm -f {candidate};"
        f" echo {message} \"(got $got)\" >&2; exit 1; fi; chmod {mode} {candidate} && mv -f {candidate} {qdest}"
    )


# Every joining node reads the token from the first server: once per phase, one reader
# at a time (sshd's MaxSessions), kept in memory only.
_tokens: dict[tuple[bool, str], str | None] = {}
_token_lock = BoundedSemaphore()


def server_token(first_server: str) -> str | None:
    """The cluster token from the first server's disk, or None while it has none."""
    slot = (bool(state.is_executing), first_server)
    with _token_lock:
        if slot not in _tokens or not _tokens[slot]:
            _ok, out = run_on(peer(first_server), f"cat {SERVER_TOKEN} 2>/dev/null || true")
            _tokens[slot] = out.strip() or None
        return _tokens[slot]


@operation()
def join_token(dest: str, first_server: str, token_ref: str | None = None):
    """
    Write the token a node presents to ``dest`` (0600 root): the secret ``token_ref``
    names (the inventory's ``env:``/``file:`` reference, resolved on the deploying
    machine), or else the token read from ``first_server``'s disk when this
    operation executes.

    The token travels host to host through this process's memory: it is never in a
    command line, in pyinfra's output or in the repository. Run it after the first
    server started (an earlier operation). No change when ``dest`` holds it already.

    **Example:**

    .. code:: python

        k3s.join_token(name="Join token", dest="/etc/rancher/k3s/token", first_server="cp")
    """
    value = resolve_secret(token_ref) if token_ref else server_token(first_server)
    if value is None:
        if state.is_executing:
            raise OperationError(f"no k3s token on {first_server} ({SERVER_TOKEN}): did k3s start there?")
        yield StringCommand(f"# token from {first_server} is written when this runs")
        return
    text = value.strip() + "\n"
    current = host.get_fact(FileDigest, path=dest)
    if current and current["sha256"] == hashlib.sha256(text.encode()).hexdigest() and current["mode"] == 600:
        host.noop(f"{dest} holds the cluster token")
        return
    qdest = shlex.quote(dest)
    yield StringCommand(f"install -d -m 0755 {shlex.quote(str(Path(dest).parent))}")
    # created 0600 before the content arrives, staged in a private folder (never /tmp)
    yield from staged_upload(text, dest)
    yield StringCommand(f"chown root:root {qdest} && chmod 0600 {qdest}")


def node_status(server: str, node: str) -> dict | None:  # type: ignore[type-arg]
    """Node ``node`` as ``server`` reports it now (the fact is read afresh each time)."""
    return peer(server).get_fact(K3sNode, node=node)


_last_status: dict[str, dict] = {}  # type: ignore[type-arg]
_cluster: dict[str, tuple[float, dict]] = {}  # type: ignore[type-arg]
_cluster_lock = BoundedSemaphore()


def cluster_nodes(server: str, max_age_s: float = 2.0) -> dict[str, dict]:  # type: ignore[type-arg]
    """Every node as ``server`` reports it, read once and shared for ``max_age_s``."""
    with _cluster_lock:
        at, nodes = _cluster.get(server, (0.0, {}))
        if time.monotonic() - at > max_age_s:
            nodes = peer(server).get_fact(K3sNodes) or {}
            _cluster[server] = (time.monotonic(), nodes)
        return nodes


def wait_ready(server: str, node: str, timeout_s: float, newer_than: str | None = None) -> float:
    """Poll ``server`` until ``node`` is Ready (with a heartbeat other than ``newer_than``)."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout_s:
        last = node_status(server, node)
        if last is not None:
            _last_status[node] = last
        if last and last["ready"] and (newer_than is None or last["heartbeat"] != newer_than):
            return time.monotonic() - start
        gevent.sleep(1.0)
    seen = "unknown to the cluster" if last is None else f"Ready={last['ready']}"
    raise OperationError(f"k3s node {node} not Ready within {timeout_s:.0f}s (as {server} sees it: {seen})")


_rollout_failed: list[str] = []


def _restart_then_wait(service: str, node: str, server: str, timeout_s: float) -> None:
    if _rollout_failed:
        raise OperationError(f"rollout stopped: {_rollout_failed[0]} did not come back Ready; {node} not restarted")
    before = node_status(server, node)
    ok, _ = run_on(host, f"systemctl restart {shlex.quote(service)}", timeout=timeout_s)
    try:
        if not ok:
            raise OperationError(f"systemctl restart {service} failed on {node} (journalctl -u {service})")
        wait_ready(server, node, timeout_s, before["heartbeat"] if before else None)
    except OperationError:
        _rollout_failed.append(node)
        raise


@operation()
def restarted_ready(service: str, node: str, server: str, timeout_s: float = 180):
    """
    Restart ``service`` and wait until ``server`` reports ``node`` Ready again (a
    fresh heartbeat), within ``timeout_s``. Call it with ``_serial=True`` and an
    ``_if`` saying what changed: one node at a time, each Ready before the next; a
    node that does not come back stops the rollout for the nodes after it.

    **Example:**

    .. code:: python

        k3s.restarted_ready(name="Restart k3s", service="k3s-agent", node="lab-agent",
                            server="lab-cp", _serial=True, _if=config.did_change)
    """
    yield FunctionCommand(_restart_then_wait, (service, node, server, timeout_s), {})


@operation()
def node_ready(node: str, server: str, labels: dict[str, str] | None = None, taints: list[str] | None = None,
               timeout_s: float = 180):
    """
    Wait (bounded) until ``server`` reports ``node`` Ready, then make it carry ``labels``
    and ``taints`` (added or overwritten with `k3s kubectl label/taint` on ``server``):
    k3s applies config.yaml's node-label / node-taint only when a node first registers,
    so this keeps the inventory true afterwards. Labels and taints the inventory does
    not name are left alone. Checked when it runs (one query when all is well); a
    node not Ready by the deadline fails, naming it.

    **Example:**

    .. code:: python

        k3s.node_ready(name="Node Ready, GPU labels", node="gpu1", server="cp",
                       labels={"nvidia.com/gpu.present": "true"}, taints=[])
    """
    if not state.is_executing:
        host.noop(f"{node} Ready and labelled: checked when this runs")
        return
    current = cluster_nodes(server).get(node)  # one `get nodes` shared by every node
    waited = 0.0
    if current is None or not current["ready"]:
        waited = wait_ready(server, node, timeout_s)
        current = _last_status[node]  # what the Ready check just read
    missing = {k: v for k, v in (labels or {}).items() if current["labels"].get(k) != v}
    extra_taints = [t for t in taints or [] if t not in current["taints"]]
    if not missing and not extra_taints:
        host.noop(f"{node} is Ready (waited {waited:.1f}s) and carries its labels and taints")
        return
    yield FunctionCommand(_label, (server, node, missing, extra_taints), {})


def _label(server: str, node: str, labels: dict[str, str], taints: list[str]) -> None:
    q = shlex.quote
    if labels:
        pairs = " ".join(q(f"{k}={v}") for k, v in labels.items())
        ok, _ = run_on(peer(server), f"k3s kubectl label node {q(node)} {pairs} --overwrite")
        if not ok:
            raise OperationError(f"k3s kubectl label node {node} failed on {server}")
    for taint in taints:
        ok, _ = run_on(peer(server), f"k3s kubectl taint node {q(node)} {q(taint)} --overwrite")
        if not ok:
            raise OperationError(f"k3s kubectl taint node {node} {taint} failed on {server}")
