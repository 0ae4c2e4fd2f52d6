"""docker cp against a hostile container: a process inside swaps a directory with a symlink to "/"
while the host copies in and out through the archive endpoints. No swap may make berthd read a host
file into a returned tar or write a file outside the container's root (or outside a volume's root).
A refused PUT leaves nothing behind."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid

import docker
import pytest

# Exchanges each pair of names with renameat2(RENAME_EXCHANGE) in a tight loop: the path through
# the pair's first name is a real directory one instant and a symlink to "/" the next, and always
# exists (a busybox `mv` loop would race too, but far more slowly and with gaps).
_XCHG_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
int main(int argc, char **argv) {
    for (unsigned long n = 0;; n++)
        for (int i = 1; i + 1 < argc; i += 2)
            renameat2(AT_FDCWD, argv[i], AT_FDCWD, argv[i + 1], RENAME_EXCHANGE);
}
"""

_BUDGET_S = 30.0  # the copying loop stops after this long even if the rounds are not all done
_ROUNDS = 300


def _helper(tmp: str) -> str | None:
    """A static exchanger when a compiler is at hand; None means: race with busybox mv instead."""
    gcc = shutil.which("gcc")
    if not gcc:
        return None
    src, out = os.path.join(tmp, "xchg.c"), os.path.join(tmp, "xchg")
    with open(src, "w") as f:
        f.write(_XCHG_C)
    r = subprocess.run([gcc, "-static", "-O2", "-o", out, src], capture_output=True)
    return out if r.returncode == 0 else None


def _tar(names: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for n, data in names.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _read_all(stream) -> bytes:
    return b"".join(stream)


def _listing(d: str) -> set[str]:
    return set(os.listdir(d))


@pytest.fixture
def sentinels():
    """A unique host directory in /tmp and a unique file in /, each holding a secret token."""
    token = uuid.uuid4().hex
    secret = f"HOST-SECRET-{token}".encode()
    sdir = f"/tmp/berth-race-{token}"
    sfile = f"/berth-race-{token}-secret"
    os.mkdir(sdir)
    try:
        with open(os.path.join(sdir, "secret"), "wb") as f:
            f.write(secret)
        with open(sfile, "wb") as f:
            f.write(secret)
        yield token, secret, sdir, sfile
    finally:
        shutil.rmtree(sdir, ignore_errors=True)
        for n in os.listdir("/"):
            if token in n:
                p = "/" + n
                shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)


def test_cp_races_never_reach_the_host(berthd, cname, sentinels):
    token, secret, sdir, sfile = sentinels
    host_root_before = _listing("/")
    tmp = tempfile.mkdtemp(prefix="berth-xchg-")
    client = berthd.client()
    vol = f"{cname}-vol"
    try:
        helper = _helper(tmp)
        # Inside the container (and inside a volume), /x/real and /x/d: one a real directory that has
        # the sentinel's names too, the other a symlink to "/"; the exchanger swaps them.
        setup = (
            f"for b in /x /vol; do mkdir -p $b/real/tmp/berth-race-{token} && "
            f"echo inner > $b/real/tmp/berth-race-{token}/secret && "
            f"echo inner > $b/real/berth-race-{token}-secret && ln -s / $b/d; done; "
            f"mkdir -p /tmp/berth-race-{token} && echo inner > /tmp/berth-race-{token}/secret && "
            f"echo inner > /berth-race-{token}-secret; "
        )
        if helper:
            cmd = setup + "exec /xchg /x/real /x/d /vol/real /vol/d"
            volumes = {helper: {"bind": "/xchg", "mode": "ro"}, vol: {"bind": "/vol", "mode": "rw"}}
        else:
            loop = "mv $1/real $1/t && mv $1/d $1/real && mv $1/t $1/d"
            cmd = setup + f"sw() {{ {loop}; }}; while :; do sw /x; sw /vol; done"
            volumes = {vol: {"bind": "/vol", "mode": "rw"}}
        ct = client.containers.run("busybox", ["sh", "-c", cmd], name=cname, detach=True, volumes=volumes)
        deadline = time.monotonic() + 20
        while berthd.docker("exec", cname, "test", "-e", "/vol/d", check=False).returncode != 0:
            assert time.monotonic() < deadline, "the container never set up its swap"
            time.sleep(0.1)

        api = client.api
        bodies: list[bytes] = []
        ok = {"get": 0, "put": 0}
        errs: list[docker.errors.APIError] = []
        start = time.monotonic()
        rounds = 0
        for i in range(_ROUNDS):
            if time.monotonic() - start > _BUDGET_S:
                break
            rounds += 1
            for base in ("/x", "/vol"):
                for path in (f"{base}/d/tmp/berth-race-{token}/secret", f"{base}/d/berth-race-{token}-secret",
                             f"{base}/d/tmp/berth-race-{token}", f"{base}/real/tmp/berth-race-{token}/."):
                    try:
                        stream, _st = api.get_archive(ct.id, path)
                        bodies.append(_read_all(stream))
                        ok["get"] += 1
                    except docker.errors.APIError as e:
                        errs.append(e)
                for path in (f"{base}/d/tmp/berth-race-{token}", f"{base}/d/tmp", f"{base}/real/tmp"):
                    try:
                        if api.put_archive(ct.id, path, _tar({f"berth-race-{token}-put-{i}": b"x",
                                                              f"berth-race-{token}/put-{i}": b"x"})):
                            ok["put"] += 1
                    except docker.errors.APIError as e:
                        errs.append(e)
        assert ok["get"] > 0 and ok["put"] > 0, ok  # the copies did happen, the race did not just refuse all
        leaked = [b for b in bodies if secret in b]
        escaped_tmp = _listing(sdir) - {"secret"}
        escaped_root = {n for n in _listing("/") - host_root_before if token in n}
        escaped_host_tmp = {n for n in _listing("/tmp") if n.startswith(f"berth-race-{token}-put")}
        assert not leaked and not escaped_tmp and not escaped_root and not escaped_host_tmp, (
            f"after {rounds} rounds: {len(leaked)} tars held the host's secret; written outside the "
            f"container: {sorted(escaped_tmp)[:5]} in {sdir}, {sorted(escaped_root)[:5]} in /, "
            f"{sorted(escaped_host_tmp)[:5]} in /tmp")
        # a lost race is a clean refusal (the path moved, or is not a directory), never a server error
        assert all(e.status_code in (400, 404) for e in errs), [str(e) for e in errs if e.status_code >= 500][:3]
        for p in (os.path.join(sdir, "secret"), sfile):
            with open(p, "rb") as f:
                assert f.read() == secret
        ct.reload()
        assert ct.status == "running"  # the swapping went on all along
    finally:
        berthd.docker("rm", "-f", cname, check=False)
        berthd.docker("volume", "rm", "-f", vol, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        for n in os.listdir("/tmp"):
            if n.startswith(f"berth-race-{token}-put"):
                os.unlink(os.path.join("/tmp", n))


def _evil_tar(kind: str) -> bytes:
    """A tar whose first entries are fine and whose last one must be refused."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ok = tarfile.TarInfo("cp-ok-file")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        d = tarfile.TarInfo("cp-ok-dir")
        d.type = tarfile.DIRTYPE
        tf.addfile(d)
        if kind == "dotdot":
            bad = tarfile.TarInfo("../escape")
        else:
            link = tarfile.TarInfo("cp-link")
            link.type, link.linkname = tarfile.SYMTYPE, "/"
            tf.addfile(link)
            bad = tarfile.TarInfo("cp-link/escape")
        bad.size = 1
        tf.addfile(bad, io.BytesIO(b"x"))
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["dotdot", "through-symlink"])
def test_refused_put_leaves_nothing_behind(berthd, cname, kind):
    client = berthd.client()
    ct = client.containers.run("busybox", ["sleep", "300"], name=cname, detach=True)
    try:
        berthd.docker("exec", cname, "mkdir", "/dest")
        with pytest.raises(docker.errors.APIError) as ei:
            client.api.put_archive(ct.id, "/dest", _evil_tar(kind))
        assert ei.value.status_code == 400
        assert berthd.out("exec", cname, "ls", "-A", "/dest") == ""
        assert berthd.docker("exec", cname, "test", "-e", "/escape", check=False).returncode != 0
        assert not os.path.exists("/escape")
    finally:
        berthd.docker("rm", "-f", cname, check=False)


def test_diff_hides_the_files_berthd_provides(berthd, cname):
    client = berthd.client()
    ct = client.containers.run("busybox", ["sleep", "300"], name=cname, detach=True)
    try:
        assert not ct.diff()  # /etc/hosts, /etc/hostname, /etc/resolv.conf are berthd's, as dockerd's
        berthd.docker("exec", cname, "sh", "-c", "echo x > /etc/mine")
        got = {(d["Kind"], d["Path"]) for d in ct.diff()}
        assert got == {(0, "/etc"), (1, "/etc/mine")}
    finally:
        berthd.docker("rm", "-f", cname, check=False)
