"""Running commands as named plan steps, with errors that say what failed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager


class LabError(RuntimeError):
    """A lab operation failed; the message names what and why."""


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``, capturing output; raise :class:`LabError` with stderr on failure."""
    full_env = {**os.environ, **env} if env else None
    data = input.decode() if isinstance(input, bytes) else input
    try:
        proc = subprocess.run(
            list(argv),
            input=data,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {argv[0]} (is its Debian package installed?)") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise LabError(f"`{' '.join(argv)}` exited {proc.returncode}: {detail}")
    return proc


def ok(argv: Sequence[str]) -> bool:
    """True when ``argv`` exits 0 (output discarded)."""
    return run(argv, check=False).returncode == 0


@contextmanager
def step(title: str, *, quiet: bool = False) -> Iterator[None]:
    """Print ``title`` as a plan step, then how long it took (or that it failed)."""
    start = time.monotonic()
    if not quiet:
        print(f"--> {title}", file=sys.stderr, flush=True)
    try:
        yield
    except BaseException:
        if not quiet:
            print(f"    FAILED: {title}", file=sys.stderr, flush=True)
        raise
    if not quiet:
        print(f"    done in {time.monotonic() - start:.1f}s", file=sys.stderr, flush=True)
