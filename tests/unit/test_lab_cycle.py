"""hearth.lab.cycle.deploy: one real pyinfra run on @local per case (a deploy file of the test's own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.lab import cycle
from hearth.lab.sh import LabError

LOCAL = Path("@local")


def write_deploy(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "deploy.py"
    path.write_text("from pyinfra import host\nfrom pyinfra.operations import server\n\n" + body)
    return path


@pytest.mark.parametrize("verbose", [False, True])
def test_results_and_output_of_a_run(tmp_path: Path, verbose: bool) -> None:
    deploy = write_deploy(tmp_path, 'host.noop("a line only -v prints")\n'
                                    'server.shell(name="Say hello", commands=["true"])\n')
    run = cycle.deploy(LOCAL, deploy, verbose=verbose, timeout=120, cwd=tmp_path)
    assert run.ok, run.stderr_tail
    assert run.totals["success"] == 1 and run.changed == ["Say hello on @local"]
    assert ("a line only -v prints" in run.output) is verbose


def test_a_run_whose_only_host_fails_says_what_failed(tmp_path: Path) -> None:
    # pyinfra prints no --json results when no host is left ("No hosts remaining!")
    deploy = write_deploy(tmp_path, 'server.shell(name="Fail", commands=["echo broken-on-purpose >&2; exit 3"])\n')
    with pytest.raises(LabError, match="exited 1 before printing results") as caught:
        cycle.deploy(LOCAL, deploy, timeout=120, cwd=tmp_path)
    assert "[@local] broken-on-purpose" in str(caught.value)


def test_a_run_that_prints_no_results_says_what_pyinfra_reported(tmp_path: Path) -> None:
    deploy = write_deploy(tmp_path, 'raise RuntimeError("the deploy file broke before any operation")\n')
    with pytest.raises(LabError, match="before printing results") as caught:
        cycle.deploy(LOCAL, deploy, timeout=120, cwd=tmp_path)
    assert "the deploy file broke before any operation" in str(caught.value)
