"""Loop filesystems for the nodes' data, crash images of them, and their cleanup.

A disk is a file under ``<root>/<run>/``, formatted ext4, attached to a loop
device and mounted at ``<root>/<run>/mnt/<node>``; the node's ``data_dir`` is
that mount point. The root is ``RAFTQ_CHAOS_DISKS`` or
``/tmp/raftq-chaos-disks``.

A crash image is a copy of the backing file taken while every process writing
to the filesystem is stopped: it holds what the filesystem had handed to the
loop device (what "reached the disk"), and not the pages still dirty in the
mounted filesystem's page cache, which a power cut would lose. To make that
window wide, a run can make writeback lazy while its disks exist: the
``vm.dirty_*`` sysctls raised (dirty pages are written back after an hour, not
30 s) and ext4 mounted with ``commit=300`` (the journal committed every 300 s,
not 5 s), so data that nobody fsynced is really absent from the images. The
sysctls are global: their old values are saved in ``<root>/sysctl-saved.json``
first and put back at teardown or by ``python -m chaos cleanup``.

Loop devices and mounts are global too: ``cleanup_stale`` unmounts and
detaches everything under the root that a killed harness left behind.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(os.environ.get("RAFTQ_CHAOS_DISKS", "/tmp/raftq-chaos-disks"))
LAZY_SYSCTLS = {"vm.dirty_expire_centisecs": "360000", "vm.dirty_writeback_centisecs": "360000"}
FILLER = "chaos-filler"


@dataclass(frozen=True)
class DiskPlan:
    """Which nodes get a loop filesystem of their own, and how it behaves."""

    size_mb: int = 256
    lazy_writeback: bool = False
    """Raise the writeback sysctls and mount with a long ext4 commit interval."""

    @property
    def mount_options(self) -> str:
        return "commit=300" if self.lazy_writeback else "defaults"


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip() or done.returncode}")
    return done.stdout.strip()


def ensure_tools() -> None:
    """Root, losetup and mkfs.ext4 (e2fsprogs is installed with apt if missing)."""
    if os.geteuid() != 0:
        raise SystemExit("disk scenarios need root (loop devices and mounts)")
    if shutil.which("losetup") is None:
        raise SystemExit("disk scenarios need losetup (util-linux)")
    if shutil.which("mkfs.ext4") is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "install", "-y", "-q", "e2fsprogs"], env=env).returncode:
            subprocess.run(["apt-get", "update", "-q"], env=env)
            subprocess.run(["apt-get", "install", "-y", "-q", "e2fsprogs"], env=env, check=True)


class LoopDisk:
    """One ext4 filesystem in a file, mounted through a loop device."""

    def __init__(self, backing: Path, mount_point: Path, plan: DiskPlan) -> None:
        self.backing = backing
        self.mount_point = mount_point
        self.plan = plan
        self.device: str | None = None

    def create(self) -> None:
        self.backing.parent.mkdir(parents=True, exist_ok=True)
        with self.backing.open("wb") as f:
            f.truncate(self.plan.size_mb << 20)
        # -m 0: no blocks reserved for root (the nodes run as root, so a
        # reserve would only blur when "full" begins).
        _run("mkfs.ext4", "-q", "-F", "-m", "0", str(self.backing))
        self.mount()

    def mount(self) -> None:
        self.mount_point.mkdir(parents=True, exist_ok=True)
        self.device = _run("losetup", "--find", "--show", str(self.backing))
        try:
            _run("mount", "-t", "ext4", "-o", self.plan.mount_options, self.device,
                 str(self.mount_point))
        except RuntimeError:
            _run("losetup", "-d", self.device)
            self.device = None
            raise

    def unmount(self) -> None:
        if os.path.ismount(self.mount_point):
            for _ in range(50):
                done = subprocess.run(["umount", str(self.mount_point)], capture_output=True)
                if done.returncode == 0:
                    break
                time.sleep(0.1)  # a killed process may still be closing its files
            else:
                subprocess.run(["umount", "-l", str(self.mount_point)], capture_output=True)
        if self.device is not None:
            subprocess.run(["losetup", "-d", self.device], capture_output=True)
            self.device = None

    def crash_image(self, dest: Path) -> None:
        """Copy what reached the disk. Call only while nothing writes to the filesystem."""
        # Sparse: only the blocks the filesystem ever wrote are copied.
        _run("cp", "--sparse=always", str(self.backing), str(dest))

    def boot_from(self, image: Path) -> None:
        """Unmount, make ``image`` the disk, mount it (ext4 replays its journal)."""
        self.unmount()
        os.replace(image, self.backing)
        try:
            self.mount()
        except RuntimeError:
            _run("e2fsck", "-f", "-y", str(self.backing))
            self.mount()

    def fill(self) -> int:
        """Write a filler file until the filesystem refuses; returns its size in bytes."""
        path = self.mount_point / FILLER
        st = os.statvfs(self.mount_point)
        size = 0
        with path.open("ab") as f:
            fd = f.fileno()
            bulk = st.f_bavail * st.f_frsize - (1 << 20)
            if bulk > 0:
                try:
                    os.posix_fallocate(fd, 0, bulk)
                    size = bulk
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
            os.lseek(fd, size, os.SEEK_SET)
            for chunk in (1 << 16, 1 << 12, 1 << 9):
                block = b"\0" * chunk
                while True:
                    try:
                        size += os.write(fd, block)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
            try:
                os.fsync(fd)  # delayed allocation may still find no block here
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        return size

    def free(self) -> None:
        (self.mount_point / FILLER).unlink(missing_ok=True)

    def free_bytes(self) -> int:
        st = os.statvfs(self.mount_point)
        return st.f_bavail * st.f_frsize


class Disks:
    """A run's disks, one per node, and the lazy writeback while they exist."""

    def __init__(self, plan: DiskPlan, run_name: str, node_ids: list[str]) -> None:
        self.plan = plan
        self.dir = ROOT / run_name
        self.disks = {n: LoopDisk(self.dir / f"{n}.img", self.dir / "mnt" / n, plan)
                      for n in node_ids}
        self._writeback: LazyWriteback | None = None

    def setup(self) -> dict[str, Path]:
        """Create and mount every disk; returns each node's data directory."""
        ensure_tools()
        try:
            for disk in self.disks.values():
                disk.create()
            if self.plan.lazy_writeback:
                self._writeback = LazyWriteback()
                self._writeback.apply()
        except BaseException:
            self.teardown()
            raise
        return {n: d.mount_point for n, d in self.disks.items()}

    def crash_images(self, nodes: list[str]) -> dict[str, Path]:
        """Image each node's disk (its processes must be stopped); the images' paths."""
        images = {}
        for node in nodes:
            images[node] = self.dir / f"{node}.crash"
            self.disks[node].crash_image(images[node])
        return images

    def boot_from(self, images: dict[str, Path]) -> None:
        for node, image in images.items():
            self.disks[node].boot_from(image)

    def teardown(self, keep_in: Path | None = None) -> None:
        """Unmount and delete everything; copy the data into ``keep_in`` first if given."""
        try:
            for node, disk in self.disks.items():
                if keep_in is not None and os.path.ismount(disk.mount_point):
                    shutil.copytree(disk.mount_point, keep_in / node, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns(FILLER, "lost+found"))
                disk.unmount()
        finally:
            if self._writeback is not None:
                self._writeback.restore()
                self._writeback = None
            shutil.rmtree(self.dir, ignore_errors=True)


class LazyWriteback:
    """Raise the ``vm.dirty_*`` writeback sysctls; put the saved values back after."""

    saved = ROOT / "sysctl-saved.json"

    def apply(self) -> None:
        ROOT.mkdir(parents=True, exist_ok=True)
        if not self.saved.exists():  # else a killed run's file holds the real originals
            old = {k: _sysctl_path(k).read_text().strip() for k in LAZY_SYSCTLS}
            self.saved.write_text(json.dumps(old))
        for key, value in LAZY_SYSCTLS.items():
            _sysctl_path(key).write_text(value)

    def restore(self) -> list[str]:
        if not self.saved.exists():
            return []
        old = json.loads(self.saved.read_text())
        for key, value in old.items():
            _sysctl_path(key).write_text(str(value))
        self.saved.unlink()
        return [f"sysctl {k}={v}" for k, v in old.items()]


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def cleanup_stale() -> list[str]:
    """Unmount, detach and delete what a killed run left under the root; restore sysctls."""
    removed: list[str] = []
    root = str(ROOT) + "/"
    with open("/proc/self/mounts") as f:
        mounts = [line.split()[1] for line in f]
    for point in sorted((m for m in mounts if m.startswith(root)), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
        removed.append(f"mount {point}")
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        device, _, rest = line.partition(":")
        if root in rest:
            subprocess.run(["losetup", "-d", device], capture_output=True)
            removed.append(f"loop {device}")
    if os.geteuid() == 0:
        removed += LazyWriteback().restore()
    if ROOT.is_dir():
        for child in ROOT.iterdir():
            shutil.rmtree(child, ignore_errors=True)
            removed.append(f"dir {child}")
    return removed
