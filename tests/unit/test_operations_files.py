"""hearth.operations.files.validated_put: how a file (a secret above all) travels.

pyinfra's SSH connector, with sudo, uploads as the login user to
``remote_temp_filename`` and then copies it into place with sudo
(pyinfra/connectors/ssh.py ``put_file``); by default that temporary file is
``/tmp/pyinfra-<sha1>``, created under the login umask. These tests run the
operation's command generator against a fake host and read the plan.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from pyinfra.api import FileUploadCommand, StringCommand
from pyinfra.facts.files import File, FileContents, Sha1File

from hearth.operations import files


class FakeHost:
    def __init__(self, facts: dict[Any, Any], diff: bool = False) -> None:
        self.facts = facts
        self.data = {"ssh_user": "hearth"}
        self.state = SimpleNamespace(config=SimpleNamespace(DIFF=diff))
        self.logged: list[str] = []

    def get_fact(self, cls: Any, **kwargs: Any) -> Any:
        return self.facts.get(cls)

    def log(self, message: str, log_func: Any = None) -> None:
        self.logged.append(message)

    def noop(self, message: str) -> None:
        self.logged.append(message)


def plan(monkeypatch: pytest.MonkeyPatch, facts: dict[Any, Any], diff: bool = False, in_place: bool = False,
         **kwargs: Any):
    """The operation's commands; ``in_place``: what the read of the file's directory says
    (hearth.operations.config_files.already_in_place, tested in test_config_files.py)."""
    fake = FakeHost(facts, diff)
    monkeypatch.setattr(files, "host", fake)
    monkeypatch.setattr(files, "already_in_place", lambda *args: in_place)
    args = {"content": "s3cret\n", "dest": "/etc/hearth/gateway/secrets/admin-token",
            "validate": "test -s {path}", "mode": "0600", "user": "hearth-gateway", "group": "hearth-gateway"}
    return list(files.validated_put._inner(**{**args, **kwargs})), fake


def test_a_secret_is_staged_in_a_private_directory_never_in_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    commands, _ = plan(monkeypatch, {File: None})
    texts = [c.get_raw_value() if isinstance(c, StringCommand) else c for c in commands]
    (upload,) = [c for c in commands if isinstance(c, FileUploadCommand)]
    candidate = "/etc/hearth/gateway/secrets/admin-token.hearth-new"
    assert upload.dest == candidate
    # the login user's SFTP session writes into a 0700 directory it owns, under /run (tmpfs)
    assert upload.remote_temp_filename.startswith(files.STAGING + "/")
    assert not upload.remote_temp_filename.startswith("/tmp")
    staging = texts.index(f"install -d -m 0700 -o hearth {files.STAGING}")
    # the candidate exists 0600 before its content arrives (cp and SFTP keep an existing file's mode)
    precreate = texts.index(f"install -m 0600 /dev/null {candidate}")
    assert staging < precreate < commands.index(upload)


def test_diff_shows_a_config_change_like_files_put(monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    facts = {File: {"mode": 644, "user": "root", "group": "root"}, Sha1File: "0" * 40,
             FileContents: ["PermitRootLogin yes"]}
    with caplog.at_level(logging.INFO, logger="pyinfra"):
        _, fake = plan(monkeypatch, facts, diff=True, content="PermitRootLogin no\n", dest="/etc/ssh/x.conf",
                       mode="0644", user="root", group="root")
    assert fake.logged == ["Will modify /etc/ssh/x.conf"]
    assert "PermitRootLogin yes" in caplog.text and "PermitRootLogin no" in caplog.text


def test_diff_never_shows_a_secret(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    facts = {File: {"mode": 384, "user": "hearth-gateway", "group": "hearth-gateway"}, Sha1File: "0" * 40,
             FileContents: ["old-secret"]}
    with caplog.at_level(logging.INFO, logger="pyinfra"):
        _, fake = plan(monkeypatch, facts, diff=True, secret=True)
    assert fake.logged == ["Will modify /etc/hearth/gateway/secrets/admin-token"]
    assert "s3cret" not in caplog.text and "old-secret" not in caplog.text
    assert "content not shown" in caplog.text


def test_unchanged_file_plans_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    facts = {File: {"mode": 600, "user": "hearth-gateway", "group": "hearth-gateway"},
             Sha1File: hashlib.sha1(b"s3cret\n").hexdigest()}
    commands, _ = plan(monkeypatch, facts, diff=True)
    assert commands == []


def test_a_file_its_directory_read_finds_right_reads_nothing_more(monkeypatch: pytest.MonkeyPatch) -> None:
    commands, _ = plan(monkeypatch, {}, in_place=True)  # any fact of its own would answer None: "missing"
    assert commands == []
