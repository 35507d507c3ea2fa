"""The process group behind ``raftq up``: start children, restart the ones that die, stop all.

A child that exits is reported by name and restarted after a short pause, so
killing one node of the local cluster shows what raftq promises: the other
two keep serving and the dead one comes back and catches up. A child that
keeps dying right after it starts is given up on, with a pointer to its log.
Stopping never waits on a child for more than a few seconds: SIGTERM, then
SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

RESTART_DELAY_S = 1.0
# A child that exits within this long of starting has "crashed on start".
QUICK_EXIT_S = 10.0
MAX_QUICK_EXITS = 5
STOP_GRACE_S = 4.0


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=0.5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@dataclass
class Child:
    """One supervised process: a node (with the URL it serves) or the worker."""

    name: str
    argv: list[str]
    log_path: Path
    url: str | None = None
    env: dict[str, str] | None = None  # added to this process's environment
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    quick_exits: int = 0
    restart_at: float | None = None
    given_up: bool = False
    announced_back: bool = True

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            env = {**os.environ, **self.env} if self.env else None
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, env=env)
        self.started = time.monotonic()
        self.restart_at = None


@dataclass
class Supervisor:
    children: list[Child] = field(default_factory=list)
    say: Callable[[str], None] = print

    def start(self, child: Child) -> None:
        self.children.append(child)
        child.start()

    def any_exited(self) -> Child | None:
        return next((c for c in self.children if not c.alive()), None)

    def poll(self) -> None:
        """Report and schedule restarts of dead children; restart those due."""
        now = time.monotonic()
        for child in self.children:
            proc = child.proc
            if child.given_up or proc is None:
                continue
            code = proc.poll()
            if code is not None and child.restart_at is None:
                self._exited(child, code, now)
            elif child.restart_at is not None and now >= child.restart_at:
                child.start()
                child.announced_back = child.url is None
                self.say(f"raftq: restarted {child.name} (pid {child.pid})")
            elif not child.announced_back and child.url is not None and ready(child.url):
                child.announced_back = True
                self.say(f"raftq: {child.name} is back and serving at {child.url}")

    def _exited(self, child: Child, code: int, now: float) -> None:
        quick = now - child.started < QUICK_EXIT_S
        child.quick_exits = child.quick_exits + 1 if quick else 0
        others = "" if child.url is None else "; the other nodes keep serving"
        self.say(f"raftq: {child.name} (pid {child.pid}) exited, {describe_exit(code)}{others}")
        if child.quick_exits >= MAX_QUICK_EXITS:
            child.given_up = True
            self.say(f"raftq: {child.name} exited {child.quick_exits} times right after "
                     f"starting; not restarting it. See {child.log_path}")
            return
        child.restart_at = now + RESTART_DELAY_S * child.quick_exits + RESTART_DELAY_S
        self.say(f"raftq: restarting {child.name} (log {child.log_path})")

    def stop(self) -> None:
        """The worker first (it delivers its last results to live nodes), then the
        nodes together; anything still running after the grace period is killed."""
        workers = [c for c in self.children if c.url is None]
        nodes = [c for c in self.children if c.url is not None]
        for group in (workers, nodes):
            for child in group:
                if child.alive():
                    assert child.proc is not None
                    child.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S / 2
            for child in group:
                if child.proc is None:
                    continue
                try:
                    child.proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
                except subprocess.TimeoutExpired:
                    self.say(f"raftq: {child.name} (pid {child.pid}) did not stop; killing it")
                    child.proc.kill()
                    child.proc.wait()
