"""The chaos harness's loop disks (root only): a crash image keeps what was
fsynced and not what was only in the page cache, a filled disk refuses
writes until freed, and teardown leaves no mount or loop device behind."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from raftq.chaos import disks
from raftq.chaos.disks import DiskPlan, Disks

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("losetup") is None or shutil.which("mkfs.ext4") is None,
    reason="needs root, losetup and mkfs.ext4",
)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(disks, "ROOT", tmp_path)
    return tmp_path


def _loops_under(path: Path) -> list[str]:
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(path) in line]


def test_crash_image_keeps_fsynced_data_and_boots(root: Path) -> None:
    d = Disks(DiskPlan(size_mb=32), "run", ["n1"])
    mount = d.setup()["n1"]
    try:
        assert os.path.ismount(mount)
        with (mount / "synced").open("wb") as f:
            f.write(b"on disk")
            f.flush()
            os.fsync(f.fileno())
        (mount / "cached").write_bytes(b"in the page cache only")
        d.boot_from(d.crash_images(["n1"]))
        assert os.path.ismount(mount)
        assert (mount / "synced").read_bytes() == b"on disk"
        # Never written back (delayed allocation keeps its data out of the
        # journal commits), so the crash image has at most an empty file.
        cached = mount / "cached"
        assert not cached.exists() or cached.read_bytes() == b""
    finally:
        d.teardown()
    assert not os.path.ismount(mount) and not _loops_under(root)
    assert not (root / "run").exists()


def test_a_filled_disk_refuses_writes_until_freed(root: Path) -> None:
    d = Disks(DiskPlan(size_mb=32), "run", ["n1"])
    mount = d.setup()["n1"]
    disk = d.disks["n1"]
    try:
        assert disk.fill() > 20 << 20
        with pytest.raises(OSError) as err, (mount / "more").open("wb") as f:
            f.write(b"x" * (1 << 20))
            os.fsync(f.fileno())
        assert err.value.errno == errno.ENOSPC
        disk.free()
        assert disk.free_bytes() > 20 << 20
    finally:
        d.teardown()
    assert not _loops_under(root)


def test_cleanup_stale_unmounts_and_detaches_what_a_killed_run_left(root: Path) -> None:
    d = Disks(DiskPlan(size_mb=32), "run", ["n1", "n2"])
    d.setup()
    removed = disks.cleanup_stale()  # as if the harness had died here
    assert sum(r.startswith("mount ") for r in removed) == 2
    assert not _loops_under(root) and not (root / "run").exists()
