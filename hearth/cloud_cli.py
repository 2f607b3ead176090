"""`hearth cloud check INVENTORY [--write]`: are the cloud aliases still served, still free,
still the context the inventory says? Asks each provider's live model list (read-only),
proposes same-family replacements that fit each alias's policy, and with ``--write``
rewrites exactly those values in the inventory (comments and layout kept), so the next
deploy carries the change.

Exit status: 0 when every alias is present and unchanged (or, with ``--write``, when every
problem got a replacement written); 1 when something needs a change; 2 when the inventory
is invalid or a provider's list could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from hearth.commands import inventory_path, load_or_report
from hearth.gateway.cloud_check import Finding, check, parse_list, rewrite
from hearth.inventory import resolve_secret
from hearth.inventory.secrets import SecretError


def fetch_list(base_url: str, key: str | None, timeout: float) -> Any:
    """GET ``<base_url>/models`` (OpenRouter's list needs no key; OpenAI's does)."""
    req = urllib.request.Request(base_url.rstrip("/") + "/models",
                                 headers={"Accept": "application/json"})
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # straight there
    with opener.open(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def _key(ref: str) -> str | None:
    try:
        return resolve_secret(ref)
    except (SecretError, OSError):
        return None  # the list is still asked, without a key


def run(path: Path, write: bool, timeout: float) -> int:
    inv = load_or_report(str(path))
    if inv is None:
        return 2
    findings: list[Finding] = []
    failed = False
    for provider, cloud in inv.clouds.items():
        try:
            body = fetch_list(cloud.base_url, _key(cloud.api_key), timeout)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            print(f"{provider}: cannot read {cloud.base_url}/models: {exc}", file=sys.stderr)
            failed = True
            continue
        live = parse_list(body)
        print(f"{provider}: {len(live)} models listed at {cloud.base_url}/models")
        for f in check(provider, dict(cloud.models), live):
            findings.append(f)
            print(f"  cloud/{provider}/{f.alias}  {f.model_id}  {f.status}"
                  + (f"  ({'; '.join(f.notes)})" if f.notes else ""))
    todo = [f for f in findings if f.changed]
    if write and todo:
        text = path.read_text(encoding="utf-8")
        new, lines = rewrite(text, todo)
        if lines:
            path.write_text(new, encoding="utf-8")
            print(f"wrote {path}: line{'s' if len(lines) > 1 else ''} "
                  f"{', '.join(map(str, lines))} changed; deploy to carry the change")
        stuck = [f for f in todo if f.status != "present" and f.replacement is None]
        for f in stuck:
            print(f"cloud/{f.provider}/{f.alias}: no replacement; remove it or pick one by hand",
                  file=sys.stderr)
        return 2 if failed else (1 if stuck else 0)
    if todo:
        print(f"{len(todo)} alias(es) need a change: hearth cloud check {path} --write")
    return 2 if failed else (1 if todo else 0)


def cmd_check(args: argparse.Namespace) -> int:
    return run(Path(args.inventory), args.write, args.timeout)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cloud", help="cloud aliases: check them against the providers' live lists")
    sub = parser.add_subparsers(dest="cloud_command", metavar="ACTION", required=True)
    chk = sub.add_parser("check", help="report per alias: present, retired, no longer free, context changed")
    chk.add_argument("inventory", type=lambda v: str(inventory_path(v)))
    chk.add_argument("--write", action="store_true",
                     help="rewrite the changed values in the inventory (comments and layout kept)")
    chk.add_argument("--timeout", type=float, default=15.0)
    chk.set_defaults(func=cmd_check)
