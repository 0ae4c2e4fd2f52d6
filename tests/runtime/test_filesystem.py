"""Root filesystem: mounts and their options, readonly root, masked and read-only paths, /dev, pivot_root
and --no-pivot, and that a symlink in the image cannot send a mount outside the rootfs."""

import os
import stat

import pytest

from .rt_helpers import IS_BERTH, host_mounts, in_container


def mounts_of(text: str) -> dict[str, tuple[str, set[str]]]:
    """/proc/self/mounts text -> {mountpoint: (fstype, options)} (last mount wins)."""
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 4:
            out[f[1]] = (f[2], set(f[3].split(",")))
    return out


def test_default_mounts_and_readonly_root(rt, bundle, cid):
    bundle.config["root"]["readonly"] = True
    out = in_container(bundle, rt, cid, "cat /proc/self/mounts; touch /x 2>/dev/null && echo WROTE || echo RO").stdout
    assert out.strip().endswith("RO")
    m = mounts_of(out)
    assert "ro" in m["/"][1]
    assert m["/proc"][0] == "proc"
    assert m["/dev"][0] == "tmpfs" and "nosuid" in m["/dev"][1]
    assert m["/dev/pts"][0] == "devpts"
    assert m["/dev/shm"][0] == "tmpfs" and {"nosuid", "nodev", "noexec"} <= m["/dev/shm"][1]
    assert m["/dev/mqueue"][0] == "mqueue"
    assert m["/sys"][0] == "sysfs" and "ro" in m["/sys"][1]
    assert any(k.startswith("/sys/fs/cgroup") for k in m)


def test_bind_tmpfs_and_options(rt, bundle, cid, tmp_path):
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "file").write_text("from host\n")
    bundle.config["mounts"] += [
        {"destination": "/data", "type": "bind", "source": str(host), "options": ["rbind", "ro", "nosuid", "nodev"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["noexec", "size=1m", "mode=700"]},
        {"destination": "/etc/hostfile", "type": "none", "source": str(host / "file"), "options": ["bind"]},
    ]
    out = in_container(bundle, rt, cid, "cat /proc/self/mounts; cat /data/file /etc/hostfile; "
                       "touch /data/x 2>/dev/null || echo RO-BIND; stat -c %a /scratch").stdout
    m = mounts_of(out)
    assert {"ro", "nosuid", "nodev"} <= m["/data"][1]
    assert m["/scratch"][0] == "tmpfs" and "noexec" in m["/scratch"][1] and "size=1024k" in m["/scratch"][1]
    assert out.count("from host") == 2
    assert "RO-BIND" in out
    assert out.strip().endswith("700")
    assert not (host / "x").exists()


def test_masked_and_readonly_paths(rt, bundle, cid):
    out = in_container(bundle, rt, cid, "wc -c < /proc/keys; ls /sys/firmware | wc -l; "
                       "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo W || echo RO; "
                       "cat /proc/self/mounts").stdout.splitlines()
    assert out[0].strip() == "0" and out[1].strip() == "0"
    assert out[2] == "RO"
    m = mounts_of("\n".join(out[3:]))
    assert "ro" in m["/proc/sys"][1] and "ro" in m["/proc/irq"][1]


def test_devices_and_dev_symlinks(rt, bundle, cid):
    bundle.linux["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640,
                                "uid": 0, "gid": 0}]
    bundle.linux["resources"]["devices"].append({"allow": True, "type": "c", "major": 10, "minor": 229,
                                                 "access": "rwm"})
    out = in_container(bundle, rt, cid, "for d in null zero full random urandom tty fuse; do "
                       "stat -c '%n %F %t:%T %a' /dev/$d; done; for l in fd stdin ptmx; do readlink /dev/$l; done; "
                       "head -c 4 /dev/zero | wc -c").stdout.splitlines()
    by = {ln.split()[0]: ln for ln in out if ln.startswith("/dev/")}
    assert "character special file 1:3 666" in by["/dev/null"]
    assert "character special file 5:0 666" in by["/dev/tty"]
    assert "character special file a:e5 640" in by["/dev/fuse"]
    assert "/proc/self/fd" in out and "/proc/self/fd/0" in out and "pts/ptmx" in out
    assert out[-1].strip() == "4"


def test_symlink_in_image_cannot_redirect_mount_to_host(rt, bundle, cid, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("host data")
    os.symlink(str(victim), os.path.join(bundle.rootfs, "escape"))          # absolute
    os.symlink("../../../../../../" + str(victim).lstrip("/"), os.path.join(bundle.rootfs, "rel"))
    bundle.config["mounts"] += [
        {"destination": "/escape/inner", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/rel/inner2", "type": "tmpfs", "source": "tmpfs"},
    ]
    before = host_mounts()
    in_container(bundle, rt, cid, "true")
    assert str(victim) not in host_mounts() and host_mounts().count("\n") <= before.count("\n") + 5
    assert sorted(os.listdir(victim)) == ["keep"]  # nothing created on the host
    # Both were created inside the rootfs instead.
    assert os.path.isdir(os.path.join(bundle.rootfs, str(victim).lstrip("/"), "inner"))


def test_no_pivot(rt, bundle, cid):
    out = in_container(bundle, rt, cid, "ls /; cat /proc/self/mountinfo | wc -l", "--no-pivot").stdout
    assert "bin" in out.split()


def test_hostname_domainname_and_sysctl(rt, bundle, cid):
    bundle.config["hostname"] = "box1"
    bundle.config["domainname"] = "example.org"
    bundle.linux["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "12345"}
    out = in_container(bundle, rt, cid, "hostname; cat /proc/sys/kernel/domainname "
                       "/proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax").stdout.split()
    assert out == ["box1", "example.org", "1", "12345"]


def test_rootfs_propagation_and_bind_propagation(rt, bundle, cid, tmp_path):
    host = tmp_path / "shared"
    host.mkdir()
    bundle.linux["rootfsPropagation"] = "rslave"
    bundle.config["mounts"].append({"destination": "/mnt/s", "type": "bind", "source": str(host),
                                    "options": ["rbind", "rprivate"]})
    out = in_container(bundle, rt, cid, "cat /proc/self/mountinfo").stdout
    line = [ln for ln in out.splitlines() if ln.split()[4] == "/mnt/s"][0]
    assert "shared:" not in line and "master:" not in line  # private


@pytest.mark.skipif(not IS_BERTH, reason="berth's error wording")
def test_mount_into_proc_is_refused(rt, bundle, cid):
    bundle.config["mounts"].append({"destination": "/proc/self/attr", "type": "tmpfs", "source": "tmpfs"})
    p = in_container(bundle, rt, cid, "true", check=False)
    assert p.returncode != 0 and "/proc" in p.stderr
    assert rt.ids() == []


def test_cgroup_mount_shows_own_cgroup(rt, bundle, cid):
    bundle.linux["resources"]["pids"] = {"limit": 77}
    out = in_container(bundle, rt, cid, "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || "
                       "cat /sys/fs/cgroup/pids.max").stdout
    assert out.strip() == "77"


def test_devices_are_nodes(rt, bundle, cid):
    in_container(bundle, rt, cid, "true")
    # /dev lived on a tmpfs in the container: nothing was created in the image's /dev.
    dev = os.path.join(bundle.rootfs, "dev")
    assert not any(stat.S_ISCHR(os.lstat(os.path.join(dev, n)).st_mode) for n in os.listdir(dev))


def test_tmpcopyup_keeps_image_content(rt, bundle, cid):
    d = os.path.join(bundle.rootfs, "etc", "app")
    os.makedirs(os.path.join(d, "sub"))
    with open(os.path.join(d, "sub", "conf"), "w") as f:
        f.write("from image\n")
    os.symlink("sub/conf", os.path.join(d, "link"))
    os.chmod(d, 0o750)
    bundle.config["mounts"].append({"destination": "/etc/app", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["tmpcopyup", "size=1m"]})
    out = in_container(bundle, rt, cid, "cat /etc/app/link; stat -c %a /etc/app; "
                       "grep ' /etc/app ' /proc/self/mounts | cut -d' ' -f3; echo new > /etc/app/x").stdout.split()
    assert out == ["from", "image", "750", "tmpfs"]
    assert not os.path.exists(os.path.join(d, "x"))  # written to the tmpfs, not the image


def test_session_keyring_is_new(rt, bundle, cid):
    bundle.linux["maskedPaths"].remove("/proc/keys")
    out = in_container(bundle, rt, cid, "cat /proc/keys").stdout
    assert "_ses." + cid in out or "_ses" in out
