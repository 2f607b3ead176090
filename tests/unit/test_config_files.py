"""hearth.facts.files.FilesInDirectory and hearth.operations.config_files.put, for real.

The fact's command runs here with sh, as pyinfra runs it on a host. The operation runs in
real pyinfra deploys on ``@local`` (a deploy file of the test's own, into a temporary
directory): it must leave every file as pyinfra's ``files.put`` leaves it, change exactly
when ``files.put`` does, and cost one command per directory when nothing changes. Each
deploy records the commands it runs (a wrapper of pyinfra's local connector, in the
test's deploy file).
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import subprocess
from pathlib import Path

import pytest

from hearth.facts.files import LARGEST, FilesInDirectory
from hearth.lab import cycle

LOCAL = Path("@local")
RECORDER = """\
import json
from pyinfra.connectors.local import LocalConnector

_run = LocalConnector.run_shell_command


def recorded(self, command, **kwargs):
    with open({log!r}, "a") as log:
        log.write(json.dumps(command if isinstance(command, str) else command.get_raw_value()) + "\\n")
    return _run(self, command, **kwargs)


LocalConnector.run_shell_command = recorded
"""


def gather(path: Path) -> dict:
    fact = FilesInDirectory()
    out = subprocess.run(["sh", "-c", fact.command(path=str(path))], capture_output=True, text=True, check=True)
    return fact.process(out.stdout.splitlines())


def sha1_of(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_the_fact_reads_every_regular_file_of_the_directory_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "unit.service").write_text("[Unit]\n")
    (tmp_path / "unit.service").chmod(0o640)
    (tmp_path / "empty").write_text("")
    (tmp_path / "with space.conf").write_text("x\n")
    (tmp_path / "setuid").write_text("#!/bin/sh\n")
    (tmp_path / "setuid").chmod(0o4755)
    (tmp_path / "large").write_bytes(b"0" * (LARGEST + 1))
    (tmp_path / "largest").write_bytes(b"0" * LARGEST)
    (tmp_path / "link").symlink_to(tmp_path / "unit.service")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deeper").write_text("y\n")
    (tmp_path / "new\nline").write_text("z\n")
    found = gather(tmp_path)
    # links, directories, what lies below, files over 1 MiB and names with a newline are left out
    assert set(found) == {"unit.service", "empty", "with space.conf", "setuid", "largest"}
    owner = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    assert found["unit.service"] == {"mode": 640, "user": owner[0], "group": owner[1],
                                     "sha1": sha1_of(tmp_path / "unit.service")}
    for name in found:
        assert found[name]["sha1"] == sha1_of(tmp_path / name), name
    assert found["setuid"]["mode"] == 4755
    assert gather(tmp_path / "missing") == {}


def run_deploy(tmp_path: Path, body: str) -> tuple[list[str], list[str]]:
    """One real pyinfra run on @local of ``body``: (the steps that changed, the commands it ran)."""
    log = tmp_path / "commands.jsonl"
    log.unlink(missing_ok=True)
    deploy = tmp_path / "deploy.py"
    deploy.write_text(RECORDER.format(log=str(log)) + "\nfrom io import StringIO\n"
                      "from pyinfra.operations import files, server\nfrom hearth.operations import config_files\n\n"
                      + body)
    run = cycle.deploy(LOCAL, deploy, timeout=120, cwd=tmp_path)
    assert run.ok, run.stderr_tail
    commands = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [name.removesuffix(" on @local") for name in run.changed], commands


def test_a_second_run_reads_each_directory_once_and_changes_nothing(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    body = (f'config_files.put(name="a", src=StringIO("alpha\\n"), dest="{one}/a.conf", mode="0640")\n'
            f'config_files.put(name="b", src=StringIO("beta\\n"), dest="{one}/b.conf", mode="0644")\n'
            f'config_files.put(name="c", src=StringIO("gamma\\n"), dest="{two}/c.conf", mode="0600")\n')
    changed, _ = run_deploy(tmp_path, body)
    assert changed == ["a", "b", "c"]
    assert (one / "a.conf").read_text() == "alpha\n" and oct((one / "a.conf").stat().st_mode)[-3:] == "640"
    assert (two / "c.conf").read_text() == "gamma\n" and oct((two / "c.conf").stat().st_mode)[-3:] == "600"
    changed, commands = run_deploy(tmp_path, body)
    assert changed == []
    assert len(commands) == 2 and all(f"find {d} " in c for c, d in zip(commands, (one, two), strict=True)), commands


def test_a_file_an_earlier_step_changed_is_read_again_and_put_back(tmp_path: Path) -> None:
    one = tmp_path / "one"
    body = (f'config_files.put(name="a", src=StringIO("alpha\\n"), dest="{one}/a.conf")\n'
            f'server.shell(name="tamper", commands=["printf tampered > {one}/b.conf"])\n'
            f'config_files.put(name="b", src=StringIO("beta\\n"), dest="{one}/b.conf")\n')
    assert run_deploy(tmp_path, body)[0] == ["a", "tamper", "b"]
    # the directory read before "tamper" says b.conf is right: it is read again, found changed
    changed, commands = run_deploy(tmp_path, body)
    assert changed == ["tamper", "b"]
    assert (one / "b.conf").read_text() == "beta\n"
    assert sum(f"find {one} " in c for c in commands) == 2, commands


STARTS = {  # how a case's file is before the deploy: (content, mode, owned by nobody)
    "missing": None, "right": ("wanted\n", 0o640, False), "other content": ("old\n", 0o640, False),
    "other mode": ("wanted\n", 0o644, False), "other owner": ("wanted\n", 0o640, True),
}


def test_it_changes_a_file_exactly_when_files_put_does_and_leaves_it_the_same(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    user, group = pwd.getpwuid(0).pw_name, grp.getgrgid(0).gr_name
    nobody = pwd.getpwnam("nobody")
    body = ""
    for tool in ("pyinfra", "hearth"):
        for i, (case, start) in enumerate(STARTS.items()):
            path = tmp_path / tool / f"case{i}"
            path.parent.mkdir(exist_ok=True)
            if start is not None:
                path.write_text(start[0])
                path.chmod(start[1])
                if start[2]:
                    os.chown(path, nobody.pw_uid, nobody.pw_gid)
            put = "files.put" if tool == "pyinfra" else "config_files.put"
            body += (f'{put}(name="{tool} {case}", src=StringIO("wanted\\n"), dest="{path}", mode="0640", '
                     f'user="{user}", group="{group}")\n')
    changed, _ = run_deploy(tmp_path, body)
    assert [c.removeprefix("hearth ") for c in changed if c.startswith("hearth ")] == \
        [c.removeprefix("pyinfra ") for c in changed if c.startswith("pyinfra ")] == \
        [case for case in STARTS if case != "right"]
    for i in range(len(STARTS)):
        ours, theirs = (tmp_path / "hearth" / f"case{i}").stat(), (tmp_path / "pyinfra" / f"case{i}").stat()
        assert (ours.st_mode, ours.st_uid, ours.st_gid) == (theirs.st_mode, theirs.st_uid, theirs.st_gid)
        assert (tmp_path / "hearth" / f"case{i}").read_text() == "wanted\n"
    assert run_deploy(tmp_path, body)[0] == []
