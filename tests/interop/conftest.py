"""Interop with real callers of an OCI runtime: podman (through conmon) and containerd (through
containerd-shim-runc-v2) run busybox containers with berth-runtime as their runc.

The runtime comes from $OCI_RUNTIME (a path or a name on $PATH, e.g. `runc`), default berth-runtime, so
a failure can be told apart from a harness problem by running the same tests on runc. Each peer runs on
private state under a temp dir; teardown removes containers, mounts, cgroups and processes even on failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from berth.testing.images import docker_archive, rootfs_tar, tar_file_layer
from interop.helpers import (
    cgroup_dirs,
    kill_procs_mentioning,
    mounts_under,
    procs_mentioning,
    remove_cgroup_tree,
    run,
    unmount_under,
)

REPO = Path(__file__).resolve().parents[2]


def runtime_path() -> str:
    rt = os.environ.get("OCI_RUNTIME") or str(REPO / ".venv" / "bin" / "berth-runtime")
    found = shutil.which(rt)
    if found is None:
        pytest.skip(f"OCI runtime {rt!r} not found (set OCI_RUNTIME)")
    return os.path.abspath(found)


def need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


@pytest.fixture(scope="session")
def oci_runtime() -> str:
    return runtime_path()


@pytest.fixture(scope="session")
def busybox_layer_tar(busybox_rootfs, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("bbtar") / "rootfs.tar"
    with open(path, "wb") as f:
        rootfs_tar(busybox_rootfs, f)
    return str(path)


@pytest.fixture(scope="session")
def busybox_docker_archive(busybox_layer_tar, tmp_path_factory) -> tuple[str, str]:
    """A minimal docker-archive (`docker save` format) of the busybox rootfs: (path, image ref)."""
    ref = "localhost/berth-interop/busybox:1"
    path = tmp_path_factory.mktemp("bbarchive") / "busybox-docker-archive.tar"
    docker_archive(str(path), ref, [("berth interop test", tar_file_layer(busybox_layer_tar))])
    return str(path), ref


class Podman:
    """podman (rootful) fully isolated from the host's podman state."""

    def __init__(self, runtime: str):
        self.runtime = runtime
        # podman refuses a runroot longer than 50 characters: keep the whole tree short, under /tmp
        self.top = tempfile.mkdtemp(prefix="bip-", dir="/tmp")
        self.cgroup_parent = "/" + os.path.basename(self.top)
        for d in ("root", "run", "tmp", "conf"):
            os.makedirs(os.path.join(self.top, d))
        storage_conf = os.path.join(self.top, "conf", "storage.conf")
        with open(storage_conf, "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{self.top}/root"\nrunroot = "{self.top}/run"\n')
        containers_conf = os.path.join(self.top, "conf", "containers.conf")
        with open(containers_conf, "w") as f:
            f.write('[containers]\nnetns = "none"\n'
                    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    f'events_logfile_path = "{self.top}/tmp/events.log"\n')
        self.env = dict(os.environ, CONTAINERS_STORAGE_CONF=storage_conf, CONTAINERS_CONF=containers_conf)
        self.base = ["podman", "--root", f"{self.top}/root", "--runroot", f"{self.top}/run",
                     "--tmpdir", f"{self.top}/tmp", "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file", "--runtime", runtime]
        # The runtime keeps its default --root: podman 4.3 drops --runtime-flag from conmon's exit command
        # (`podman container cleanup`), which would then delete in the wrong state dir. Container ids are
        # unique; teardown force-deletes any this session created.
        self.created: set[str] = set()
        # no CAP_SYS_RESOURCE here: podman's default rlimits (1048576) cannot be set (anchors "Host quirks")
        self.run_opts = ["--network", "none", "--cgroup-parent", self.cgroup_parent,
                         "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]

    def cmd(self, *args: str) -> list[str]:
        return [*self.base, *args]

    def __call__(self, *args: str, check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        return run(self.cmd(*args), check=check, timeout=timeout, env=self.env, **kw)

    def teardown(self) -> None:
        try:
            self.created.update(self("ps", "-a", "-q", "--no-trunc", check=False).stdout.split())
            self("rm", "-a", "-f", "-t", "0", check=False, timeout=60)
            self("rmi", "-a", "-f", check=False, timeout=60)
        finally:
            # conmon and `podman container cleanup` (conmon's exit command) carry our root in argv
            kill_procs_mentioning(self.top)
            for cid in self.created:
                subprocess.run([self.runtime, "delete", "-f", cid], capture_output=True, timeout=30)
            unmount_under(self.top)
            remove_cgroup_tree(self.cgroup_parent)
            shutil.rmtree(self.top, ignore_errors=True)


def _delete_runtime_state(runtime: str, root: str) -> None:
    """Force-delete containers a crashed caller left in the runtime's state dir (any depth: ctr adds the ns)."""
    for dirpath, _dirs, files in os.walk(root):
        if "state.json" in files:
            subprocess.run([runtime, "--root", os.path.dirname(dirpath), "delete", "-f",
                            os.path.basename(dirpath)], capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def podman(oci_runtime, busybox_layer_tar):
    need("podman", "conmon")
    p = Podman(oci_runtime)
    try:
        p("import", "--change", 'CMD ["sh"]', busybox_layer_tar, "localhost/berth-interop/busybox:1")
        yield p
    finally:
        p.teardown()
        assert_nothing_left(p.top, p.cgroup_parent)


class Containerd:
    """A private containerd (its own root, state, socket and namespace); ctr runs tasks with --runc-binary."""

    NAMESPACE = "berthtest"

    def __init__(self, runtime: str):
        self.runtime = runtime
        self.top = tempfile.mkdtemp(prefix="bic-", dir="/tmp")  # short: unix socket paths are limited
        self.sock = f"{self.top}/c.sock"
        self.runc_root = f"{self.top}/runc"
        self.fifo_dir = f"{self.top}/fifo"  # ctr's default is the shared /run/containerd/fifo
        self.cgroup_parent = "/" + os.path.basename(self.top)
        self.config = f"{self.top}/config.toml"
        with open(self.config, "w") as f:
            f.write(f'''version = 2
root = "{self.top}/root"
state = "{self.top}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
''')
        self.log = open(f"{self.top}/containerd.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(["containerd", "--config", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not start: {self.log_tail()}")
            time.sleep(0.05)
        while self.ctr("version", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"containerd does not answer: {self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self) -> str:
        return Path(f"{self.top}/containerd.log").read_text(errors="replace")[-3000:]

    def cmd(self, *args: str) -> list[str]:
        return ["ctr", "--address", self.sock, "--namespace", self.NAMESPACE, *args]

    def run_opts(self, cid: str) -> list[str]:
        return ["--runc-binary", self.runtime, "--runc-root", self.runc_root,
                "--cgroup", f"{self.cgroup_parent}/{cid}", "--fifo-dir", self.fifo_dir]

    def ctr(self, *args: str, check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        return run(self.cmd(*args), check=check, timeout=timeout, **kw)

    def teardown(self) -> None:
        try:
            if self.proc.poll() is None:
                for line in self.ctr("tasks", "ls", "-q", check=False, timeout=20).stdout.split():
                    self.ctr("tasks", "kill", "-s", "SIGKILL", line, check=False, timeout=20)
                    self.ctr("tasks", "delete", "-f", line, check=False, timeout=20)
                for line in self.ctr("containers", "ls", "-q", check=False, timeout=20).stdout.split():
                    self.ctr("containers", "delete", line, check=False, timeout=20)
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            self.log.close()
            kill_procs_mentioning(self.top)  # shims (their argv names our socket) and stray runtimes
            _delete_runtime_state(self.runtime, self.runc_root)
            unmount_under(self.top)
            remove_cgroup_tree(self.cgroup_parent)
            shutil.rmtree(self.top, ignore_errors=True)


@pytest.fixture(scope="session")
def containerd(oci_runtime, busybox_docker_archive):
    need("containerd", "ctr", "containerd-shim-runc-v2")
    c = Containerd(oci_runtime)
    try:
        path, ref = busybox_docker_archive
        c.ctr("images", "import", path, timeout=120)  # unpacks into the overlayfs snapshotter
        c.image = ref
        yield c
    finally:
        c.teardown()
        assert_nothing_left(c.top, c.cgroup_parent)


def assert_nothing_left(top: str, cgroup_parent: str) -> None:
    """Teardown really cleaned up: a leak fails the session (as an error in the last test using the peer)."""
    left = {"procs": procs_mentioning(top), "mounts": mounts_under(top), "cgroups": cgroup_dirs(cgroup_parent),
            "files": os.path.exists(top)}
    assert not any(left.values()), f"left behind: {left}"
