"""The `hearth lab` command group: up, down, status, sleep, wake."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hearth.lab import cycle, daemon_ctl, gateway_check, images, lifecycle, machine, power_cli, try_gateway
from hearth.lab.sh import LabError
from hearth.lab.spec import load_spec
from hearth.lab.state import LabRecord, cache_dir, lab_root, load_record

DEFAULT_INVENTORY = "inventory/lab.yml"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `lab` and its sub-commands to the hearth CLI."""
    lab = subparsers.add_parser(
        "lab", help="local test machines (nspawn containers, QEMU VMs, arm64) for the deploy"
    )
    sub = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    p = sub.add_parser("up", help="create and boot the lab machines (idempotent)")
    p.add_argument("--inventory", "-i", default=DEFAULT_INVENTORY, type=Path)
    p.set_defaults(func=_up)
    p = sub.add_parser(
        "deploy", help="lab up, then converge -> idempotence (-> --verify with testinfra)"
    )
    p.add_argument("inventory", nargs="?", default=DEFAULT_INVENTORY, type=Path)
    p.add_argument("--verify", action="store_true", help="then run the testinfra checks")
    p.set_defaults(func=_deploy)
    p = sub.add_parser("down", help="remove everything `lab up` created")
    p.add_argument("--purge", action="store_true", help="also drop image cache and lab SSH key")
    p.set_defaults(func=_down)
    p = sub.add_parser("status", help="machines, addresses, power state, boot-to-sshd time")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_status)
    p = sub.add_parser("images", help="the image cache: each image's size, and whether it is current, "
                                      "in use by a lab, or stale (--prune removes the stale ones)")
    p.add_argument("--inventory", "-i", default=DEFAULT_INVENTORY, type=Path,
                   help="the lab inventory whose images are current (its ssh.user is in their key)")
    p.add_argument("--prune", action="store_true", help="remove the stale images and unfinished builds")
    p.set_defaults(func=_images)
    p = sub.add_parser("try", help="one chat completion through the gateway with the openai client, "
                                   "from another lab machine; prints answer, route and upstream")
    p.add_argument("--model", default=None, help="model or route alias (default: <prefix>/auto)")
    p.add_argument("--prompt", default="Say hello to the lab in one sentence.")
    p.set_defaults(func=_try)
    for name, helptext, func in (
        ("sleep", "suspend HOST (systemctl suspend inside): a VM sleeps in S3, a container is held off", _sleep),
        ("wake", "send HOST a real Wake-on-LAN magic packet and wait for sshd", _wake),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("host")
        p.set_defaults(func=func)


def _guard(fn):  # type: ignore[no-untyped-def]
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return int(fn(args) or 0)
        except LabError as exc:
            print(f"hearth lab: error: {exc}", file=sys.stderr)
            return 1

    return wrapped


def _need_lab() -> LabRecord:
    lab = load_record(lab_root())
    if lab is None:
        raise LabError("no lab is up (run `hearth lab up`)")
    return lab


def status_rows(lab: LabRecord) -> list[dict[str, object]]:
    """One dict per machine: name, kind, arch (accel for VMs), address, mac, power, boot time."""
    rows = []
    for m in lab.machines.values():
        mach = machine.get(m)
        rows.append({
            "name": m.name, **mach.describe(), "address": m.address, "mac": m.mac,
            "power": mach.state(), "boot_to_sshd_s": machine.read_boot(m).get("sshd_s"),
        })  # fmt: skip
    return rows


@_guard
def _up(args: argparse.Namespace) -> int:
    lab = lifecycle.up(args.inventory)
    _print_status(lab)
    return 0


@_guard
def _deploy(args: argparse.Namespace) -> int:
    lifecycle.up(args.inventory)
    result = cycle.full_cycle(args.inventory, run_verify=args.verify)
    print(
        f"deploy: first run {result.converge.seconds:.1f}s "
        f"({result.converge.totals['success']} changes), "
        f"second run {result.noop.seconds:.1f}s (no changes)"
        + (f", verify {result.verify_seconds:.1f}s" if result.verify_seconds else "")
    )
    print(gateway_check.banner(args.inventory))
    return 0


@_guard
def _try(args: argparse.Namespace) -> int:
    lab = _need_lab()
    result = try_gateway.ask(lab, Path(lab.inventory), args.model, args.prompt)
    print(try_gateway.report(result))
    return 0 if result.status == 200 else 1


@_guard
def _down(args: argparse.Namespace) -> int:
    removed = lifecycle.down(purge=args.purge)
    print("removed: " + (", ".join(removed) if removed else "nothing (no lab was up)"))
    return 0


@_guard
def _images(args: argparse.Namespace) -> int:
    cache, user = cache_dir(), load_spec(args.inventory).ssh_user
    found = images.survey(cache, user)
    print(f"image cache {cache} (current: what {args.inventory} boots)")
    for image in found:
        users = f"  ({_summary(image.used_by)})" if image.used_by else ""
        print(f"  {image.path.name:<28}{image.size / 2**20:>8.0f} MiB  {image.state}{users}")
    stale = [i for i in found if i.state == "stale"]
    freed = sum(i.size for i in stale) / 2**20
    if not args.prune:
        print(f"{len(stale)} stale, {freed:.0f} MiB" + (" (hearth lab images --prune removes them)" if stale else ""))
        return 0
    removed = images.prune(cache, user)
    print(f"removed {len(removed)} stale, {sum(i.size for i in removed) / 2**20:.0f} MiB: "
          + (", ".join(i.path.name for i in removed) or "nothing"))
    return 0


def _summary(used_by: tuple[str, ...]) -> str:
    """The labs by root; mounts and processes counted (``lab /var/lib/hearth-lab, 4 mounts``)."""
    labs = [u for u in used_by if u.startswith("lab ")]
    counts = [f"{n} {one if n == 1 else many}" for one, many in (("mount", "mounts"), ("process", "processes"))
              if (n := sum(u.startswith(one + " ") for u in used_by))]
    return ", ".join(labs + counts)


@_guard
def _status(args: argparse.Namespace) -> int:
    lab = load_record(lab_root())
    if lab is None:
        print(json.dumps({"up": False}) if args.json else "no lab is up")
        return 0
    if args.json:
        daemon = daemon_ctl.pid(lab_root()) is not None
        print(json.dumps({"up": True, "daemon": daemon, "machines": status_rows(lab)}, indent=2))
    else:
        _print_status(lab)
    return 0


def _print_status(lab: LabRecord) -> None:
    daemon = "running" if daemon_ctl.pid(lab_root()) else "NOT RUNNING"
    print(f"lab LAN {lab.bridge} {lab.host_cidr}   daemon: {daemon}   inventory: {lab.inventory}")
    print(f"{'MACHINE':<16}{'KIND':<16}{'ADDRESS':<16}{'MAC':<19}{'POWER':<8}BOOT->SSHD")
    notes = []
    for r in status_rows(lab):
        t = r["boot_to_sshd_s"]
        shown = f"{t:.2f}s" if isinstance(t, float | int) else "-"
        kind = f"{r['arch']} {r['kind']}" + (f" {r['accel']}" if "accel" in r else "")
        print(f"{r['name']:<16}{kind:<16}{r['address']:<16}{r['mac']:<19}{r['power']:<8}{shown}")
        if "accel_why" in r:
            notes.append(f"  {r['name']}: {r['accel']}: {r['accel_why']}")
    if notes:
        print("VM accelerator:\n" + "\n".join(notes))


@_guard
def _sleep(args: argparse.Namespace) -> int:
    lab = _need_lab()
    m = _machine(lab, args.host)
    seconds = power_cli.sleep(lab, m)
    print(f"{m.name}: asleep ({seconds:.1f}s from `systemctl suspend`)")
    return 0


@_guard
def _wake(args: argparse.Namespace) -> int:
    lab = _need_lab()
    m = _machine(lab, args.host)
    if machine.power_state(m) == "on":
        print(f"{m.name}: already on")
        return 0
    seconds = power_cli.wake(lab, m)
    print(f"{m.name}: magic packet sent to {m.mac} on {lab.broadcast}; sshd up in {seconds:.2f}s")
    return 0


def _machine(lab: LabRecord, name: str) -> machine.MachineRecord:
    if name not in lab.machines:
        raise LabError(f"no lab machine named {name!r} (known: {', '.join(lab.machines)})")
    return lab.machines[name]
