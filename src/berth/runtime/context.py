"""What a container start (or an exec) needs, gathered and checked in the runtime before it forks."""

from berth.linux import libc as L

NS_FLAGS = {
    "pid": L.CLONE_NEWPID, "network": L.CLONE_NEWNET, "mount": L.CLONE_NEWNS, "ipc": L.CLONE_NEWIPC,
    "uts": L.CLONE_NEWUTS, "user": L.CLONE_NEWUSER, "cgroup": L.CLONE_NEWCGROUP, "time": L.CLONE_NEWTIME,
}
# /proc/<pid>/ns/<name> for each OCI namespace type.
NS_PROC = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "user": "user",
           "cgroup": "cgroup", "time": "time"}


class Context:
    """Plain attributes (no dataclasses: that import costs milliseconds on every container start)."""

    def __init__(self, **kw):
        self.cid: str = ""
        self.config: dict = {}
        self.process: dict = {}
        self.bundle: str = ""
        self.rootfs: str = ""
        self.fifo: str | None = None
        self.no_pivot = False
        self.preserve_fds = 0
        self.terminal = False
        self.new_ns: list[str] = []           # namespace types to create
        self.join_ns: dict[str, str] = {}     # type -> path to join
        self.ns_fds: dict[str, int] = {}      # exec: type -> open fd of the container's namespace
        self.bpf: bytes | None = None
        self.seccomp_flags: list[str] = []
        self.is_exec = False
        self.tramp_fd: int | None = None      # the sealed trampoline memfd (made by the runtime before fork)
        self.cgroup_fds: list[int] = []       # cgroup v1 `tasks` files the child writes itself into
        self.new_keyring = True
        self.start_message = False           # run: init starts at once after "ready" (no exec.fifo)
        self.__dict__.update(kw)

    @property
    def userns(self) -> bool:
        return "user" in self.new_ns or "user" in self.join_ns or "user" in self.ns_fds
