"""The monitor host: one detached process whose single poll loop runs the monitor of every
container of a berthd (berth.monitor.monitor.Monitor), so an idle container costs a few objects
and fds in a shared, warm interpreter instead of a process of its own.

berthd starts it on demand (`python -I -S -c ... host SOCK`, SOCK = <exec_root>/monitor-host.sock)
and finds it again after a restart through that socket. The host is detached (setsid, double fork,
no parent-death signal): it outlives berthd. It holds <exec_root>/monitor-host.lock for its whole
life, so a new host never binds the socket while an old one still serves it.

Protocol on SOCK (a connection opens with one JSON request line; answers are JSON lines):
  {"op": "hello"}           -> {"ok": true, "pid": host pid, "containers": n}; the connection stays
                               open: it is berthd's. A later {"op": "bye"} -> {"ok": true, "exit": bool}.
  {"op": "spawn", "rundir"} -> the monitor's status line ({"ok", "pid", "monitor"} | {"error"})
                               once `runtime create` ran (the loop serves everyone else
                               meanwhile); then the connection is closed.
The host exits when it monitors no container and no berthd is connected (after a start-up grace).

Reaping: the host is the child subreaper; one SIGCHLD wakes the loop, waitpid(-1) hands each
status to the monitor that registered the pid (or keeps it for one that will: a bounded table).
Failure isolation: an exception in a monitor's callback drops that client or fd (logged to the
container's monitor.log); one escaping a monitor's own bookkeeping closes that monitor only.

`run_single` is the same host for one container, without a socket (`berthd --monitor
per-container`): it exits when its container is done.
"""

import fcntl
import gc
import json
import os
import select
import signal
import socket
import sys
import time
import traceback

from berth.monitor import monitor as _monitor

_ORPHANS_MAX = 1024  # statuses kept for pids nobody registered (yet)
_GRACE = 30.0  # seconds a new host waits for its first berthd before giving up
_ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class _Conn:
    """A connection on the host socket: a request line, then berthd's control channel (hello)."""

    def __init__(self, sock):
        self.sock = sock
        self.fd = sock.fileno()
        self.buf = b""
        self.hello = False


class Host:
    def __init__(self):
        self.poll = select.poll()
        self.handlers = {}  # fd -> callback(events)
        self.owner = {}  # fd -> the Monitor it belongs to (absent: the host's own)
        self.children = {}  # pid -> (Monitor, callback(status))
        self.orphan_status = {}
        self.monitors = []
        self.conns = {}  # fd -> _Conn
        self.listener = None
        self.lock_fd = -1
        self.started = time.monotonic()
        self.ever_connected = False
        self.nofile = None  # (soft, hard) the host started with, if it raised the soft limit
        self.env = {"PATH": _ENV_PATH}
        if os.environ.get("XDG_RUNTIME_DIR"):
            self.env["XDG_RUNTIME_DIR"] = os.environ["XDG_RUNTIME_DIR"]

    # -- fds and children ----------------------------------------------------------------------
    def raise_nofile(self):
        """Every container costs the host ~6 fds: take the hard limit of open files (a service's
        soft limit is often 1024); runtimes and containers still get the limit we were given."""
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                self.nofile = (soft, hard)
            except (OSError, ValueError):
                pass

    def child_limits(self, for_child):
        """Around a spawn (and in a forked runtime): the open-files limit the host was started with."""
        if self.nofile is not None:
            import resource

            soft, hard = self.nofile
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft if for_child else hard, hard))

    def watch(self, fd, mask, cb, owner=None):
        self.handlers[fd] = cb
        if owner is not None:
            self.owner[fd] = owner
        self.poll.register(fd, mask)

    def unwatch(self, fd, owner=None):
        """Stop watching `fd`; with `owner`, only if it is that monitor's (a stale unwatch of a
        number another container reuses must not silence that container)."""
        if owner is not None and self.owner.get(fd) is not owner:
            return
        self.owner.pop(fd, None)
        if self.handlers.pop(fd, None) is not None:
            try:
                self.poll.unregister(fd)
            except KeyError:
                pass

    def reap(self):
        while True:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            ent = self.children.pop(pid, None)
            if ent is None:
                if len(self.orphan_status) >= _ORPHANS_MAX:  # orphans of pid-namespace-less containers
                    self.orphan_status.pop(next(iter(self.orphan_status)))
                self.orphan_status[pid] = st
                continue
            mon, cb = ent
            try:
                cb(st)
            except Exception:  # noqa: BLE001 - that container's monitor fails, not the host
                self.fail(mon)

    def fail(self, mon):
        mon.warn("monitor failed:\n" + traceback.format_exc())
        self.remove(mon)

    def remove(self, mon):
        if mon in self.monitors:
            self.monitors.remove(mon)
        try:
            mon.close()
        except Exception:  # noqa: BLE001
            traceback.print_exc()

    # -- containers ----------------------------------------------------------------------------
    def add(self, rundir, reply):
        """Monitor the container whose monitor.json is in `rundir`: `runtime create` runs while
        the loop goes on; `reply(status)` gets its status line (a dict) when it is done."""
        mon = None
        try:
            with open(os.path.join(rundir, "monitor.json")) as f:
                cfg = json.load(f)
            cfg["rundir"] = rundir
            mon = _monitor.Monitor(cfg, self)
            _monitor.write_file_atomic(os.path.join(rundir, "monitor.pid"), str(os.getpid()).encode())
            mon.serve()
            self.monitors.append(mon)
            mon.create(lambda err: self._created(mon, err, reply))
        except Exception as e:  # noqa: BLE001 - reported to berthd, the host goes on
            if mon is not None:
                mon.warn("monitor start failed:\n" + traceback.format_exc())
            self._created(mon, str(e) or type(e).__name__, reply)

    def _created(self, mon, err, reply):
        if err is None:
            reply({"ok": True, "pid": mon.init_pid, "monitor": os.getpid()})
            return
        reply({"error": err})
        if mon is None:
            return
        if mon.listener is not None:  # nobody may connect to a monitor that failed
            mon.unwatch(mon.listener.fileno())
        try:
            mon.run_async(mon.runtime("delete", "--force", mon.id), lambda _rc, _out: self.remove(mon))
        except Exception:  # noqa: BLE001
            self.remove(mon)

    # -- the host socket -----------------------------------------------------------------------
    def listen(self, sock_path):
        """Take the host lock (waiting for a host that is still exiting), then bind the socket."""
        d, name = os.path.split(sock_path)
        os.chdir(d)  # bind by a relative name: exec roots can be longer than AF_UNIX allows
        self.lock_fd = os.open("monitor-host.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + 10
        while True:
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError("another monitor host holds " + os.path.join(d, "monitor-host.lock"))
                time.sleep(0.02)
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(name)
        os.chmod(name, 0o600)
        self.sock_name = name
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.watch(self.listener.fileno(), select.POLLIN, self._accept)

    def _accept(self, _ev):
        try:
            s, _ = self.listener.accept()
        except BlockingIOError:
            return
        s.setblocking(False)
        c = _Conn(s)
        self.conns[c.fd] = c
        self.watch(c.fd, select.POLLIN, lambda ev, c=c: self._on_conn(c, ev))

    def _close_conn(self, c):
        self.unwatch(c.fd)
        self.conns.pop(c.fd, None)
        c.sock.close()

    def _reply(self, c, obj):
        c.sock.setblocking(True)  # a short line to a peer that waits for it
        c.sock.settimeout(5)
        try:
            c.sock.sendall(json.dumps(obj).encode() + b"\n")
        except OSError:
            return False
        finally:
            c.sock.setblocking(False)
        return True

    def _on_conn(self, c, _ev):
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_conn(c)  # a berthd went away (or a client gave up)
            return
        c.buf += data
        while b"\n" in c.buf:
            line, c.buf = c.buf.split(b"\n", 1)
            try:
                req = json.loads(line)
                op = req["op"]
            except (ValueError, KeyError, TypeError):
                self._reply(c, {"error": "monitor host: bad request line"})
                self._close_conn(c)
                return
            if op == "hello":
                c.hello = self.ever_connected = True
                self._reply(c, {"ok": True, "pid": os.getpid(), "containers": len(self.monitors)})
            elif op == "bye":
                self.unwatch(c.fd)
                self.conns.pop(c.fd, None)  # this berthd no longer counts
                self._reply(c, {"ok": True, "exit": self.should_exit()})
                c.sock.close()
                return
            elif op == "spawn" and not c.hello:
                self.unwatch(c.fd)  # the answer comes when the runtime created the container
                self.add(str(req.get("rundir")), lambda st, c=c: self._spawned(c, st))
                return
            else:
                self._reply(c, {"error": f"monitor host: unknown op {op!r}"})
                self._close_conn(c)
                return
        if len(c.buf) > 65536:
            self._close_conn(c)

    def _spawned(self, c, st):
        self._reply(c, st)
        self.conns.pop(c.fd, None)
        c.sock.close()

    def should_exit(self):
        if self.monitors:
            return False
        if self.listener is None:
            return True
        # Without a berthd ever connected: wait a little for the one that started us.
        return not self.conns and (self.ever_connected or time.monotonic() - self.started > _GRACE)

    # -- the loop ------------------------------------------------------------------------------
    def loop(self, wake_r):
        self.watch(wake_r, select.POLLIN, lambda ev: self._drain_wake(wake_r))
        while True:
            if self.should_exit():
                return
            timeouts = [t for t in (m.timeout() for m in self.monitors) if t is not None]
            if not self.monitors:
                timeouts.append(1000)
            try:
                events = self.poll.poll(min(timeouts) if timeouts else None)
            except InterruptedError:
                continue
            for fd, ev in events:
                cb = self.handlers.get(fd)
                if cb is None:
                    continue
                mon = self.owner.get(fd)
                try:
                    cb(ev)
                except Exception:  # noqa: BLE001 - one container's trouble stays that container's
                    if mon is None:
                        traceback.print_exc()
                        c = self.conns.get(fd)
                        if c is not None:
                            self._close_conn(c)
                        continue
                    try:
                        mon.on_error(fd)
                    except Exception:  # noqa: BLE001
                        self.fail(mon)
            self.reap()
            for mon in list(self.monitors):
                try:
                    mon.tick()
                    if mon.done():
                        self.remove(mon)
                except Exception:  # noqa: BLE001
                    self.fail(mon)

    def _drain_wake(self, fd):
        try:
            while os.read(fd, 512):
                pass
        except BlockingIOError:
            pass

    def shutdown(self):
        if self.listener is not None:
            try:
                os.unlink(self.sock_name)  # ours: no other host binds while we hold the lock
            except OSError:
                pass
            self.listener.close()


def _detach(log_path):
    """setsid + double fork: the caller's process returns in the grandchild only."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    errlog = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(errlog, 2)
    os.close(errlog)
    return devnull


def _signals():
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # only SIGKILL ends a host: containers depend on it
    _monitor.set_subreaper()
    return wake_r


def run_single(rundir, status_fd):
    """A host for the one container in `rundir`, status line to `status_fd` (per-container mode)."""
    os.set_inheritable(status_fd, False)  # the runtime and the container must not hold it
    try:
        with open(os.path.join(rundir, "monitor.json")) as f:
            log_path = json.load(f).get("monitor_log") or os.path.join(rundir, "monitor.log")
    except (OSError, ValueError) as e:
        os.write(status_fd, json.dumps({"error": f"monitor: {e}"}).encode() + b"\n")
        os._exit(1)
    devnull = _detach(log_path)
    os.dup2(devnull, 1)
    os.close(devnull)
    os.chdir("/")
    wake_r = _signals()
    host = Host()

    def reply(st):
        try:
            os.write(status_fd, json.dumps(st).encode() + b"\n")
        except OSError:
            pass
        os.close(status_fd)

    host.add(rundir, reply)
    host.loop(wake_r)
    os._exit(0)


def serve_shared(sock_path):
    """`host SOCK`: bind, detach, report "ready PID" on stdout, serve until idle."""
    host = Host()
    host.listen(sock_path)
    devnull = _detach(os.path.join(os.path.dirname(sock_path), "monitor-host.log"))
    wake_r = _signals()
    host.raise_nofile()
    _preload()
    gc.collect()
    gc.freeze()  # the preloaded modules' objects: forked runtimes do not copy them on GC
    os.write(1, f"ready {os.getpid()}\n".encode())
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        host.loop(wake_r)
    finally:
        host.shutdown()
    os._exit(0)


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


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["host"] and len(argv) == 2:
        serve_shared(os.path.abspath(argv[1]))
    elif len(argv) == 2:
        run_single(argv[0], int(argv[1]))
    else:
        sys.exit("usage: host SOCK | RUNDIR STATUS_FD")


if __name__ == "__main__":
    main()
