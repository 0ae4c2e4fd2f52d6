"""Volumes and binds as Docker mounts them: a new volume filled from the image, nocopy, propagation modes."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.interop


def _volume_path(berthd, name: str) -> str:
    return json.loads(berthd.out("volume", "inspect", name))[0]["Mountpoint"]


def test_new_volume_is_filled_from_the_image(berthd, cname):
    vol, empty = cname + "-fill", cname + "-nocopy"
    try:
        # a new named volume over /etc starts with the image's /etc, as in Docker
        listing = berthd.out("run", "--rm", "-v", f"{vol}:/etc", "busybox", "ls", "/etc").split()
        assert "passwd" in listing and "group" in listing
        with open(os.path.join(_volume_path(berthd, vol), "passwd")) as f:
            assert f.read().startswith("root:x:0:0:")
        # only the first use copies: a file removed stays removed
        berthd.docker("run", "--rm", "-v", f"{vol}:/etc", "busybox", "rm", "/etc/group")
        assert "group" not in berthd.out("run", "--rm", "-v", f"{vol}:/etc", "busybox", "ls", "/etc").split()
        # nocopy: the volume stays empty
        assert berthd.out("run", "--rm", "-v", f"{empty}:/etc:nocopy", "busybox", "ls", "-A", "/etc") == ""
        assert os.listdir(_volume_path(berthd, empty)) == []
    finally:
        berthd.docker("volume", "rm", "-f", vol, empty, check=False)


def test_anonymous_volume_is_filled_too(berthd, cname):
    berthd.docker("run", "-d", "--name", cname, "-v", "/bin", "busybox", "sleep", "300")
    try:
        anon = [m for m in berthd.inspect(cname)["Mounts"] if m["Destination"] == "/bin"][0]
        assert os.path.exists(os.path.join(anon["Source"], "busybox"))
        assert berthd.out("exec", cname, "echo", "ok") == "ok\n"
    finally:
        berthd.docker("rm", "-f", "-v", cname, check=False)


def test_bind_propagation_modes(berthd, cname, tmp_path):
    src = str(tmp_path)
    info = berthd.out("run", "--rm", "-v", f"{src}:/mnt:rshared", "busybox", "grep", " /mnt ", "/proc/self/mountinfo")
    assert "shared:" in info
    info = berthd.out("run", "--rm", "-v", f"{src}:/mnt", "busybox", "grep", " /mnt ", "/proc/self/mountinfo")
    assert "shared:" not in info and "master:" not in info  # rprivate by default
    berthd.docker("run", "-d", "--name", cname, "-v", f"{src}:/mnt:ro,rslave", "busybox", "sleep", "300")
    try:
        m = [m for m in berthd.inspect(cname)["Mounts"] if m["Destination"] == "/mnt"][0]
        assert m["Propagation"] == "rslave" and m["RW"] is False
    finally:
        berthd.docker("rm", "-f", cname, check=False)


def test_bad_mount_modes_are_refused(berthd, cname):
    r = berthd.docker("run", "--rm", "-v", "/tmp:/x:bogus", "busybox", "true", check=False)
    assert r.returncode == 125 and b"invalid mode: bogus" in r.stderr
    r = berthd.docker("run", "--rm", "-v", f"{cname}-v:/x:rshared", "busybox", "true", check=False)
    assert r.returncode == 125 and b"propagation applies to bind mounts only" in r.stderr
    assert f"{cname}-v" not in berthd.out("volume", "ls", "-q").split()
