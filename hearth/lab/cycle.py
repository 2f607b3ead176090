"""Converge -> idempotence -> verify: the lab's standard cycle.

1. converge: ``pyinfra -y --json INVENTORY.py deploy.py`` must end without errors;
2. idempotence: the same command again must change nothing. pyinfra 3.10's
   ``--json`` prints ``{"plan": [...], "results": {"operations": [...], "totals":
   {"hosts", "success", "error", "no_change"}, "failed_hosts": [...]}}`` where
   ``success`` counts (op, host) pairs that *changed* something; zero changes means
   ``totals.success == 0`` and no errors;
3. verify: pytest-testinfra modules in ``tests/lab`` over SSH.

Used by the lab test fixture, `hearth lab deploy` and `hearth bench lab`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hearth.lab.sh import LabError

REPO = Path(__file__).resolve().parents[2]


@dataclass
class DeployRun:
    """One pyinfra run: time, totals and the operations that changed something."""

    seconds: float
    returncode: int
    totals: dict[str, int]
    failed_hosts: list[str]
    changed: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    output: str = field(default="", repr=False)  # all pyinfra printed (stdout, then stderr)

    @property
    def ok(self) -> bool:
        """No failed host, no errored operation."""
        return self.returncode == 0 and not self.failed_hosts and self.totals.get("error", 0) == 0


def pyinfra_inventory_for(inventory_yml: Path) -> Path:
    """The pyinfra inventory (``X.py``) beside ``X.yml``; written if missing."""
    py = inventory_yml.with_suffix(".py")
    if not py.exists():
        py.write_text(
            '"""pyinfra inventory for the YAML beside it (written by hearth lab)."""\n\n'
            "from hearth.inventory.groups import pyinfra_groups\n\n"
            "globals().update(pyinfra_groups(__file__))\n"
        )
    return py


def parse_results(stdout: str) -> tuple[dict[str, int], list[str], list[str]]:
    """(totals, failed_hosts, changed op descriptions) from pyinfra's ``--json`` stdout."""
    payload = None
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            payload = json.loads(line)
            break
    if payload is None or not isinstance(payload.get("results"), dict):
        raise LabError("pyinfra printed no --json results (did it run with -y?)")
    results = payload["results"]
    changed = [f"{op['name']} on {', '.join(op['success'])}" for op in results["operations"]
               if op["success"]]  # fmt: skip
    return dict(results["totals"]), list(results["failed_hosts"]), changed


def run_pyinfra(inventory_py: Path, deploy_py: Path | None = None, *, limit: str | None = None,
                json: bool = False, verbosity: int = 0, timeout: float | None = None,
                cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """pyinfra once, as a user types it: ``pyinfra -y [--json] [-v..] [--limit HOST] INVENTORY DEPLOY``.

    Its exit code and output, whatever happened: for a run that is meant to fail (pyinfra
    prints no ``--json`` results when no host is left). Use ``deploy`` for the results.

    Example: ``run_pyinfra(inv_py, REPO / "roles/firewall/main.py", limit="lab-cp", timeout=300)``.
    """
    argv = [str(Path(sys.executable).with_name("pyinfra")), "-y", *(["--json"] if json else []),
            *(["-" + "v" * verbosity] if verbosity else []), *(["--limit", limit] if limit else []),
            str(inventory_py), str(deploy_py or cwd / "deploy.py")]  # fmt: skip
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def deploy(inventory_py: Path, deploy_py: Path | None = None, *, limit: str | None = None,
           verbose: bool = False, timeout: float | None = None, cwd: Path = REPO) -> DeployRun:
    """Run pyinfra once against ``inventory_py`` (a role file runs as a deploy); parse its JSON.

    A run that prints no results (pyinfra stopped before it ran: a connect error, a
    deploy file that raised, its only host failed) is a LabError with what pyinfra reported.

    Example: ``deploy(inv_py, REPO / "roles/ollama/main.py", limit="lab-ollama", timeout=300)``.
    """
    start = time.monotonic()
    proc = run_pyinfra(inventory_py, deploy_py, limit=limit, json=True, verbosity=int(verbose),
                       timeout=timeout, cwd=cwd)
    seconds = time.monotonic() - start
    try:
        totals, failed, changed = parse_results(proc.stdout)
    except (LabError, ValueError, KeyError) as exc:
        raise LabError(
            f"pyinfra ({' '.join(proc.args[1:])}) exited {proc.returncode} before printing "
            f"results ({exc}); what it reported:\n{error_excerpt(proc.stderr)}"
        ) from exc
    return DeployRun(seconds, proc.returncode, totals, failed, changed, error_excerpt(proc.stderr),
                     proc.stdout + proc.stderr)


def error_excerpt(stderr: str, limit: int = 40) -> str:
    """The failing operations from pyinfra's output: header plus what the hosts said."""
    blocks: list[list[str]] = [[]]
    for line in stderr.splitlines():
        if line.startswith("--> "):
            blocks.append([])
        blocks[-1].append(line)
    keep: list[str] = []
    for block in blocks:
        if any("error" in ln.lower() or "traceback" in ln.lower() for ln in block):
            keep += [ln for ln in block if ln.strip() and not ln.rstrip().endswith(
                ("Success", "No changes"))]  # fmt: skip
    lines = stderr.splitlines()
    return "\n".join(keep[:limit]) if keep else "\n".join(lines[-limit:])


@dataclass
class CycleResult:
    """Timings and runs of one converge/idempotence(/verify) cycle."""

    converge: DeployRun
    noop: DeployRun
    verify_seconds: float | None = None


def converge_and_check_idempotence(inventory_yml: Path, deploy_py: Path | None = None) -> CycleResult:
    """Deploy, deploy again, and require the second run to change nothing."""
    inv_py = pyinfra_inventory_for(inventory_yml)
    print(f"--> Converge: pyinfra -y {inv_py.name} deploy.py", file=sys.stderr, flush=True)
    first = deploy(inv_py, deploy_py)
    if not first.ok:
        raise LabError(
            f"converge failed (failed hosts {first.failed_hosts}, totals {first.totals}):\n"
            f"{first.stderr_tail}"
        )
    print(f"    {first.totals} in {first.seconds:.1f}s", file=sys.stderr, flush=True)
    print("--> Idempotence: the same deploy again must change nothing", file=sys.stderr)
    second = deploy(inv_py, deploy_py)
    if not second.ok:
        raise LabError(f"second deploy failed: {second.failed_hosts}\n{second.stderr_tail}")
    if second.totals.get("success", 0) != 0:
        raise LabError(
            f"not idempotent: the second run changed {second.totals['success']} "
            f"(operation, host) pairs: {'; '.join(second.changed)}"
        )
    print(f"    no changes, {second.seconds:.1f}s", file=sys.stderr, flush=True)
    return CycleResult(first, second)


def verify(inventory_yml: Path, *, extra: list[str] | None = None) -> float:
    """Run the testinfra modules against an already deployed lab; seconds taken."""
    from hearth.lab.state import load_record

    lab = load_record()
    ready = ["--hearth-lab-ready"] if lab and lab.inventory == str(inventory_yml.resolve()) else []
    argv = [sys.executable, "-m", "pytest", "-q", "-m", "lab", str(REPO / "tests/lab"),
            "--hearth-inventory", str(inventory_yml), *ready, *(extra or [])]  # fmt: skip
    print(f"--> Verify: {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    start = time.monotonic()
    if subprocess.run(argv, cwd=REPO, check=False).returncode != 0:
        raise LabError("testinfra verification failed (see above)")
    return time.monotonic() - start


def full_cycle(inventory_yml: Path, *, run_verify: bool = True) -> CycleResult:
    """Converge, check idempotence, then verify with testinfra."""
    result = converge_and_check_idempotence(inventory_yml)
    if run_verify:
        result.verify_seconds = verify(inventory_yml)
    return result
