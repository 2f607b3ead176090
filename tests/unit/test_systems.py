"""Which systems hearth configures (issue 9 item 3): the decision, the facts' parsing,
and the inventory's `managed: false` for hosts hearth only routes to."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hearth import systems
from hearth.deploy_data import group_defaults
from hearth.facts.system import PythonVersion, SshClientAddress
from hearth.inventory import InventoryError, load_inventory
from hearth.inventory.groups import build_groups


def distro(ident: str, major: int | None, pretty: str = "") -> dict[str, Any]:
    return {"name": ident.capitalize(), "major": major, "minor": None,
            "release_meta": {"ID": ident, **({"PRETTY_NAME": pretty} if pretty else {})}}


@pytest.mark.parametrize("ident,major", [("debian", 12), ("debian", 13), ("ubuntu", 22), ("ubuntu", 24),
                                         ("raspbian", 12)])
def test_supported(ident: str, major: int) -> None:
    assert systems.unsupported_reason(distro(ident, major)) is None


@pytest.mark.parametrize("ident,major,pretty", [
    ("postmarketos", 24, "postmarketOS v24.06"), ("alpine", 3, ""), ("debian", 11, ""), ("ubuntu", 20, ""),
    ("fedora", 40, ""), ("", None, ""),
])
def test_unsupported_says_what_and_what_to_do(ident: str, major: int | None, pretty: str) -> None:
    why = systems.unsupported_reason(distro(ident, major, pretty))
    assert why is not None
    assert "Debian 12+, Ubuntu 22.04+, Raspberry Pi OS 12+" in why and "managed: false" in why
    if pretty:
        assert why.startswith(pretty)


def test_gateway_python() -> None:
    assert systems.python_problem((3, 11, 2)) is None
    assert systems.python_problem((3, 12, 3)) is None
    why = systems.python_problem((3, 10, 12))  # Ubuntu 22.04
    assert why is not None and "3.10.12" in why and ">= 3.11" in why
    assert systems.python_problem(None) is not None


def test_python_version_fact_parses() -> None:
    assert PythonVersion().process(["3 10 12"]) == (3, 10, 12)
    assert PythonVersion().process([]) is None


def test_ssh_client_address_fact() -> None:
    fact = SshClientAddress()
    assert "SSH_CONNECTION" in fact.command()
    assert fact.process(["192.168.77.1"]) == "192.168.77.1"
    assert fact.process([""]) is None


def test_unmanaged_hosts_are_never_connected_to(write_inventory: Callable[..., Path]) -> None:
    def change(d: dict[str, Any]) -> None:
        d["hosts"]["phone1"]["managed"] = False
        d["hosts"]["phone2"]["managed"] = True
        del d["hosts"]["phone2"]["wireguard_public_key"]

    path = write_inventory(change)
    inv = load_inventory(path, group_defaults())
    groups = build_groups(inv, path)
    assert "phone1" not in [name for entries in groups.values() for name, _ in entries]
    assert "phone2" in [name for name, _ in groups["linux"]]


def test_unmanaged_host_cannot_carry_the_gateway(write_inventory: Callable[..., Path]) -> None:
    with pytest.raises(InventoryError) as err:
        load_inventory(write_inventory(lambda d: d["hosts"]["k3master"].update(managed=False)), group_defaults())
    assert any("hosts.k3master.roles" in line and "managed: false" in line for line in err.value.lines)


def test_example_phones_are_unmanaged_and_everything_else_deploys() -> None:
    path = Path(__file__).resolve().parents[2] / "inventory" / "example.yml"
    inv = load_inventory(path, group_defaults())
    unmanaged = sorted(n for n, h in inv.hosts.items() if not h.managed)
    assert unmanaged == ["phone1", "phone2", "phone3"]  # postmarketOS: Alpine, OpenRC, no apt
    linux = [name for name, _ in build_groups(inv, path)["linux"]]
    assert set(linux) == {n for n, h in inv.hosts.items() if h.os == "linux" and h.managed}


def test_a_managed_host_never_gives_its_wireguard_key(write_inventory: Callable[..., Path]) -> None:
    key = "y0QwpyBc9hZshgVQ5gZxjBmeD2HaJAnV9sI8obJp/2s="
    with pytest.raises(InventoryError) as err:
        load_inventory(write_inventory(lambda d: d["hosts"]["eyes"].update(wireguard_public_key=key)),
                       group_defaults())
    assert any("hosts.eyes.wireguard_public_key" in line for line in err.value.lines)


def test_plan_says_which_hosts_hearth_does_not_deploy(capsys: pytest.CaptureFixture[str]) -> None:
    from hearth.cli import main

    assert main(["plan", str(Path(__file__).resolve().parents[2] / "inventory" / "example.yml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    (phone,) = [line for line in lines if line.startswith("phone1 ")]
    assert "managed: false, not deployed" in phone
    (eyes,) = [line for line in lines if line.startswith("eyes ")]
    assert "managed" not in eyes


def test_deploy_skips_an_unsupported_host_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    class FakeHost:
        name = "phone9"

        def __init__(self, distro: dict[str, Any]) -> None:
            self.distro = distro

        def get_fact(self, cls: type, **_: Any) -> Any:
            assert cls.__name__ == "LinuxDistribution"
            return self.distro

    with caplog.at_level("WARNING", logger="pyinfra"):
        assert systems.configurable(FakeHost(distro("debian", 12)))
        assert not caplog.records
        assert not systems.configurable(FakeHost(distro("postmarketos", 24, "postmarketOS v24.06")))
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("hearth: phone9 skipped, nothing changed there: postmarketOS v24.06 is not a system")


def test_deploy_py_gates_every_linux_role_on_the_system() -> None:
    """deploy.py applies no Linux role to a host hearth.systems refuses."""
    text = (Path(__file__).resolve().parents[2] / "deploy.py").read_text()
    assert 'linux = "linux" in host.groups and configurable(host)' in text
    for line in text.splitlines():
        if line.startswith("if ") and "linux" in line and "windows" not in line:
            assert line.startswith("if linux"), line
