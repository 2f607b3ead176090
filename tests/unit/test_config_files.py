"""hearth.facts.files.DirectoryListing, hearth.operations.config_files.put and
hearth.operations.paths, for real.

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

from hearth.facts.files import LARGEST, DirectoryListing
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
    fact = DirectoryListing()
    out = subprocess.run(["sh", "-c", fact.command(path=str(path))], capture_output=True, text=True, check=True)
    return fact.process(out.stdout.splitlines())


def sha1_of(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_the_fact_lists_every_entry_with_a_regular_files_sha1(tmp_path: Path) -> None:
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
    (tmp_path / "sub").chmod(0o750)
    (tmp_path / "sub" / "deeper").write_text("y\n")
    (tmp_path / "new\nline").write_text("z\n")
    found = gather(tmp_path)
    # what lies below and names with a newline are left out
    assert set(found) == {"unit.service", "empty", "with space.conf", "setuid", "large", "largest", "link", "sub"}
    owner = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    assert found["unit.service"] == {"kind": "file", "mode": 640, "user": owner[0], "group": owner[1],
                                     "sha1": sha1_of(tmp_path / "unit.service")}
    for name in ("empty", "with space.conf", "setuid", "largest"):
        assert found[name]["kind"] == "file" and found[name]["sha1"] == sha1_of(tmp_path / name), name
    assert found["large"]["sha1"] is None  # over 1 MiB: its operation reads it itself
    assert found["setuid"]["mode"] == 4755
    assert found["link"]["kind"] == "link" and found["link"]["sha1"] is None
    assert found["sub"] == {"kind": "directory", "mode": 750, "user": owner[0], "group": owner[1], "sha1": None}
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


PATH_CASES = {  # (operation, wanted present) -> how the path is before the deploy
    "directory made": ("directory", True, None), "directory right": ("directory", True, ("dir", 0o750)),
    "directory other mode": ("directory", True, ("dir", 0o755)),
    "directory removed": ("directory", False, ("dir", 0o755)),
    "directory already gone": ("directory", False, None), "file made": ("file", True, None),
    "file right": ("file", True, ("file", 0o750)), "file other mode": ("file", True, ("file", 0o600)),
    "file removed": ("file", False, ("file", 0o644)), "file already gone": ("file", False, None),
}


def test_paths_change_exactly_when_files_directory_and_files_file_do(tmp_path: Path) -> None:
    body = ""
    for tool in ("pyinfra", "hearth"):
        for i, (case, (op, present, start)) in enumerate(PATH_CASES.items()):
            path = tmp_path / tool / f"case{i}"
            path.parent.mkdir(exist_ok=True)
            if start is not None:
                path.mkdir() if start[0] == "dir" else path.write_text("kept\n")
                path.chmod(start[1])
            module = "files" if tool == "pyinfra" else "paths"
            mode = ', mode="0750"' if present else ""
            body += f'{module}.{op}(name="{tool} {case}", path="{path}", present={present}{mode})\n'
    changed, _ = run_deploy(tmp_path, "from hearth.operations import paths\n" + body)
    ours = [c.removeprefix("hearth ") for c in changed if c.startswith("hearth ")]
    assert ours == [c.removeprefix("pyinfra ") for c in changed if c.startswith("pyinfra ")]
    assert ours == [case for case in PATH_CASES if "right" not in case and "already" not in case]
    for i in range(len(PATH_CASES)):
        ours_path, theirs = tmp_path / "hearth" / f"case{i}", tmp_path / "pyinfra" / f"case{i}"
        assert ours_path.exists() == theirs.exists()
        if theirs.exists():
            assert ours_path.stat().st_mode == theirs.stat().st_mode
            assert ours_path.is_dir() or ours_path.read_text() == theirs.read_text()


def test_paths_as_wanted_cost_one_read_of_each_parent(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    body = ("from hearth.operations import paths\n"
            f'paths.directory(name="one", path="{one}", mode="0755")\n'
            f'paths.directory(name="one/a", path="{one}/a", mode="0700")\n'
            f'paths.file(name="one/b", path="{one}/b", present=False)\n'
            f'paths.directory(name="two", path="{two}", mode="0755")\n'
            f'paths.file(name="one/c", path="{one}/c", mode="0600")\n')
    assert run_deploy(tmp_path, body)[0] == ["one", "one/a", "two", "one/c"]
    changed, commands = run_deploy(tmp_path, body)
    assert changed == []
    assert [c.split(" -mindepth")[0].rsplit("find ", 1)[1] for c in commands] == [str(tmp_path), str(one)], commands
