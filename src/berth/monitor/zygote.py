"""A warm parent for monitors: imports done once, forks one monitor per request.

berthd starts it (`python -I -S`) and connects to its socket per container start, sending one
JSON line {"rundir": ...}. The zygote forks; the child runs `monitor.run(rundir, conn)`, which
detaches (setsid, double fork) and writes its status line on the connection. Forked monitors share
the interpreter's pages with the zygote (copy-on-write), so each costs only its private pages, and
no interpreter start sits on the container-start path. Single-threaded: forking is safe here.
The zygote dies with berthd (PR_SET_PDEATHSIG); running monitors do not depend on it.
"""

import gc
import json
import os
import signal
import socket
import sys

from berth.monitor import monitor

PR_SET_PDEATHSIG = 1


def _pdeathsig():
    monitor.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    sock_dir, name = os.path.split(argv[0])
    _pdeathsig()
    os.chdir(sock_dir)  # bind by a relative name: run dirs can be longer than AF_UNIX allows
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(name)
    os.chmod(name, 0o600)
    lsock.listen(128)
    os.write(1, b"ready\n")
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    # Everything the monitor needs is imported: freeze it so the children's GC does not touch
    # (and thereby copy) the shared objects.
    _preload()
    gc.collect()
    gc.freeze()
    while True:
        conn, _ = lsock.accept()
        try:
            req = _read_line(conn)
            rundir = json.loads(req)["rundir"]
        except (OSError, ValueError, KeyError) as e:
            try:
                conn.sendall(json.dumps({"error": f"zygote: bad request: {e}"}).encode() + b"\n")
            except OSError:
                pass
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            try:
                lsock.close()
                fd = os.dup(conn.fileno())
                conn.close()
                monitor.run(rundir, fd)
            except BaseException as e:  # noqa: BLE001 - report anything to berthd
                try:
                    os.write(fd, json.dumps({"error": f"monitor: {e}"}).encode() + b"\n")
                except OSError:
                    pass
            os._exit(1)
        conn.close()
        while True:
            try:
                os.waitpid(pid, 0)  # the child exits as soon as the monitor proper is detached
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break


_RUNTIME_MODULES = (
    "berth.runtime.cli", "berth.runtime.commands", "berth.runtime.container", "berth.runtime.init",
    "berth.runtime.rootfs", "berth.runtime.process", "berth.runtime.cgroup", "berth.runtime.devices",
    "berth.runtime.hooks", "berth.runtime.tty", "berth.runtime.channel", "berth.runtime.state",
    "berth.runtime.jsonio", "berth.runtime.log", "berth.runtime.mountopts", "berth.runtime.trampoline",
    "berth.runtime.context", "berth.seccomp.cache", "berth.seccomp.loader", "berth.cgroups",
)


def _preload():
    """Import berth-runtime's modules once, for monitors that run it in-process (runtime_inproc)."""
    import importlib

    for name in _RUNTIME_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing module only means a slower first use
            pass


def _read_line(conn):
    buf = b""
    while b"\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
        if len(buf) > 65536:
            raise ValueError("request too long")
    return buf.split(b"\n", 1)[0]


if __name__ == "__main__":
    main()
