"""The storage faults: power loss, a full disk, a corrupt file; and their scenarios.

In the first two, each node's data is on a loop filesystem of its own
(``chaos.disks``, root only).

- ``power_loss``: freeze every node (SIGSTOP to its process group, waited
  until every thread has stopped), take crash images of the filesystems, kill
  the nodes, mount the images in place of the disks; the heal starts the
  nodes on them. With ``durability: fsync`` nothing acknowledged may be lost;
  with ``durability: none`` (which survives process crashes only) tasks are
  lost, which shows that the scenario can fail.
- ``disk_full``: a filler file fills one node's filesystem. While it is full
  no node may die and a write sent through that node must be answered 507;
  the heal deletes the filler and the node must accept writes again by itself.
- ``corrupt_node`` (no loop disk needed): one node is killed, then bytes of
  its snapshot or journal (before the journal's last frame) are flipped, or
  its snapshot is truncated. It must refuse to start, exiting
  with a one-line message naming the file; ``raftq node --config F --rejoin``
  must bring it back.

What a nemesis expects and sees is recorded as ``expect`` records; the
checker fails the run on any that did not hold.
"""

from __future__ import annotations

from pathlib import Path

from raftq.chaos.cluster import wait_for
from raftq.chaos.disks import DiskPlan, Disks
from raftq.chaos.history import now_ms, outcome_of_status
from raftq.chaos.http import call
from raftq.chaos.nemesis import COMPACT_OFTEN, Active, Context, Scenario, _start
from raftq.chaos.workload import task_spec
from raftq.raft.journal_format import FRAME_MARK

FILES = ("raft.snapshot", "raft.journal")
REFUSAL_TIMEOUT_S = 30.0
"""How long a node started on a corrupt file may take to exit."""
FULL_TIMEOUT_S = 10.0
"""How long after the disk filled a write through the node may take to get 507."""
FREED_TIMEOUT_S = 15.0
"""How long after the filler is deleted the node may take to accept writes again."""


def expect(ctx: Context, what: str, ok: bool, detail: str = "", **extra: object) -> None:
    ctx.history.record({"type": "expect", "t": now_ms(), "what": what, "ok": ok,
                        "detail": detail, **extra})


def _disks(ctx: Context) -> Disks:
    if ctx.disks is None:
        raise RuntimeError("a storage fault needs the scenario's disks (Scenario.disks)")
    return ctx.disks


def _expect_all_alive(ctx: Context, when: str) -> None:
    for node in ctx.cluster.node_ids:
        if node not in ctx.cluster.procs:
            continue
        alive = ctx.cluster.alive(node)
        code = ctx.cluster.procs[node].returncode
        expect(ctx, "no node died", alive,
               "" if alive else f"{node} exited ({code}) {when}: {_last_line(ctx, node)}",
               node=node)


def _last_line(ctx: Context, node: str) -> str:
    try:
        lines = ctx.cluster.log_path(node).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def _probe_write(ctx: Context, node: str, tag: str, seq: list[int]) -> tuple[int | None, str]:
    """One write sent to ``node`` itself (no failover), recorded as a submission."""
    seq[0] += 1
    task_id = f"{tag}-{node}-{seq[0]}"
    t_inv = now_ms()
    reply = call(ctx.cluster.url(node), "POST", "/v1/tasks", task_spec(task_id, ctx.rng),
                 timeout=3.0)
    ctx.history.record({
        "type": "submit", "process": "storage-probe", "node": node, "task_ids": [task_id],
        "batch": False, "t_inv": t_inv, "t_done": now_ms(),
        "outcome": outcome_of_status(reply.status), "http_status": reply.status,
        "code": reply.error, "attempt": 0,
    })
    return reply.status, reply.error or ""


# power loss


def power_loss(ctx: Context) -> Active:
    disks = _disks(ctx)
    nodes = list(ctx.cluster.node_ids)
    t0 = now_ms()
    stopped = ctx.cluster.freeze(nodes)
    expect(ctx, "nodes frozen before imaging", stopped)
    t_frozen = now_ms()
    images = disks.crash_images(nodes)
    t_imaged = now_ms()
    for node in nodes:
        ctx.cluster.kill_group(node)
    disks.boot_from(images)
    ctx.history.record({"type": "power-loss", "t": t0, "freeze_ms": round(t_frozen - t0),
                        "image_ms": round(t_imaged - t_frozen),
                        "remount_ms": round(now_ms() - t_imaged)})

    def power_on() -> None:
        _start(ctx, nodes)
        for node in nodes:
            if not ctx.cluster.alive(node):
                expect(ctx, "node starts on its crash image", False,
                       f"{node}: {_last_line(ctx, node)}", node=node)

    return Active("power-loss", nodes, power_on, t0)


# full disk


def disk_full(ctx: Context) -> Active:
    disks = _disks(ctx)
    node = ctx.rng.choice(ctx.cluster.node_ids)
    disk = disks.disks[node]
    t0 = now_ms()
    filled = disk.fill()
    ctx.history.record({"type": "disk-full", "t": t0, "node": node, "filler_bytes": filled,
                        "free_bytes": disk.free_bytes()})
    seq = [0]
    tag = f"full-{int(t0)}"
    seen: list[tuple[int | None, str]] = []

    def refused() -> bool:
        seen.append(_probe_write(ctx, node, tag, seq))
        return seen[-1][0] == 507

    ok = wait_for(refused, FULL_TIMEOUT_S, interval=0.2)
    expect(ctx, "507 through the full node", ok,
           "" if ok else f"{node}: last answers {seen[-3:]}", node=node,
           after_ms=round(now_ms() - t0))

    def free() -> None:
        _expect_all_alive(ctx, "while a disk was full")
        still_full = _probe_write(ctx, node, tag, seq)
        expect(ctx, "507 through the full node until freed", still_full[0] == 507,
               f"{node} answered {still_full} before the filler was deleted", node=node)
        disk.free()
        t_free = now_ms()
        accepted = wait_for(lambda: _probe_write(ctx, node, tag, seq)[0] in (200, 201, 202),
                            FREED_TIMEOUT_S, interval=0.2)
        expect(ctx, "writes accepted again once freed", accepted,
               "" if accepted else f"{node} still refuses {FREED_TIMEOUT_S:.0f} s after",
               node=node, after_ms=round(now_ms() - t_free))
        _expect_all_alive(ctx, "after the disk was freed")

    return Active("disk-full", [node], free, t0)


# corrupt files


def corrupt_node(ctx: Context) -> Active | None:
    node = ctx.rng.choice(ctx.cluster.node_ids)
    data = ctx.cluster.data_dir(node)
    if not _corruptible(data):
        return None  # nothing written yet: try again after the next quiet spell
    ctx.cluster.kill_group(node)
    t0 = now_ms()
    damage = _corrupt(ctx, data)
    ctx.history.record({"type": "corruption", "t": t0, "node": node, **damage})

    def restart() -> None:
        _expect_refusal(ctx, node, str(damage["file"]), str(damage["how"]))
        t_rejoin = now_ms()
        ctx.cluster.start(node, "--rejoin")
        served = _serving_or_exited(ctx, node, 60.0)
        if not served and ctx.cluster.procs[node].returncode == 0:
            ctx.cluster.start(node)  # a --rejoin that only moved the data aside
            served = _serving_or_exited(ctx, node, 60.0)
        expect(ctx, "--rejoin brings the node back", served,
               "" if served else f"{node}: {_last_line(ctx, node)}", node=node)
        ctx.history.record({"type": "boot", "targets": [node], "t": t_rejoin,
                            "boot_ms": round(now_ms() - t_rejoin), "rejoin": True})

    return Active("corrupt-node", [node], restart, t0)


def _serving_or_exited(ctx: Context, node: str, timeout: float) -> bool:
    """Wait until the node serves HTTP (True) or its process exits (False)."""
    proc = ctx.cluster.procs[node]
    wait_for(lambda: proc.poll() is not None or ctx.cluster.serving(node), timeout)
    return proc.poll() is None and ctx.cluster.serving(node)


def _corruptible(data: Path) -> list[tuple[Path, int]]:
    """The files worth damaging, each with the span of bytes to damage in."""
    out = []
    for name in FILES:
        path = data / name
        if name == "raft.journal":
            span = _last_frame_offset(path)
        else:
            span = path.stat().st_size if path.exists() else 0
        if span > 1:
            out.append((path, span))
    return out


def _corrupt(ctx: Context, data: Path) -> dict[str, object]:
    """Flip bytes in the snapshot or the journal, or truncate the snapshot."""
    rng = ctx.rng
    path, span = rng.choice(_corruptible(data))
    if path.name == "raft.snapshot" and rng.random() < 0.5:
        cut = rng.randint(1, min(64, span - 1))
        with path.open("r+b") as f:
            f.truncate(span - cut)
        return {"file": str(path), "how": f"truncated by {cut} bytes", "size": span}
    offsets = sorted(rng.sample(range(span), min(3, span)))
    with path.open("r+b") as f:
        for offset in offsets:
            f.seek(offset)
            byte = f.read(1)[0]
            f.seek(offset)
            f.write(bytes([byte ^ (1 << rng.randrange(8))]))
    return {"file": str(path), "how": f"bits flipped at {offsets}", "size": span}


def _last_frame_offset(path: Path) -> int:
    """Where the journal's last frame starts (-1 if it has none).

    Flips stay before it: a damaged last frame is what a crash in mid-write
    leaves, which a node rightly cuts off and starts without (one sync writes
    one frame; a rewrite after compaction can be one frame of up to 1 MiB).
    """
    if not path.exists():
        return -1
    return path.read_bytes().rfind(FRAME_MARK)


def _expect_refusal(ctx: Context, node: str, file: str, how: str) -> None:
    """Start the node as usual; it must exit, its last line naming the file."""
    ctx.cluster.start(node)
    proc = ctx.cluster.procs[node]
    if _serving_or_exited(ctx, node, REFUSAL_TIMEOUT_S) or proc.poll() is None:
        ctx.cluster.kill_group(node)
        expect(ctx, "refuses to start on a corrupt file", False,
               f"{node} started on {Path(file).name} ({how})", node=node, file=file)
        return
    line = _last_line(ctx, node)
    ok = proc.returncode != 0 and Path(file).name in line
    expect(ctx, "refuses to start on a corrupt file", ok,
           "" if ok else f"{node} exited {proc.returncode} with {line!r} ({how})",
           node=node, file=file, message=line)


# Node data on 128 MB ext4 loop disks; lazy writeback so what nobody fsynced is
# really missing from crash images.
POWER_DISKS = DiskPlan(size_mb=128, lazy_writeback=True)

STORAGE_SCENARIOS = [
    Scenario("power-loss", "freeze every node, take crash images of their ext4 loop disks, "
             "kill them, restart on the images (durability: fsync); log compacted every 5 s",
             power_loss, hold_s=(1.0, 4.0), quiet_s=(4.0, 10.0), disks=POWER_DISKS,
             node_settings=COMPACT_OFTEN),
    Scenario("power-loss-none", "power-loss with durability: none, which must lose tasks",
             power_loss, hold_s=(1.0, 4.0), quiet_s=(4.0, 10.0), disks=POWER_DISKS,
             node_settings={**COMPACT_OFTEN, "durability": "none"}, must_fail=True),
    Scenario("disk-full", "fill one node's 96 MB ext4 loop disk, then free it; the log "
             "compacted every 5 s", disk_full, hold_s=(5.0, 10.0),
             disks=DiskPlan(size_mb=96), node_settings=COMPACT_OFTEN),
    Scenario("corrupt-node", "kill a node, flip bytes of its snapshot or journal or "
             "truncate its snapshot; it must refuse to start; --rejoin brings it back; "
             "the log compacted every 5 s", corrupt_node, hold_s=(0.0, 0.0),
             quiet_s=(4.0, 8.0), node_settings=COMPACT_OFTEN),
]
