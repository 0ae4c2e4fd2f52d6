"""The monitor of one container: holds the container's stdio, writes the json-file log, serves
attach/exec/wait over a unix socket and records the exit status; it outlives berthd.

A `Monitor` is not a process: it lives in a monitor host (berth.monitor.host), one detached,
single-threaded process with one poll loop that serves every container of a berthd (or, with
`berthd --monitor per-container`, just one). The host owns the poll object, the SIGCHLD reaping
and the child table; a Monitor registers its fds and child pids with it, and anything that goes
wrong in a Monitor's callbacks fails that container's operation (or its monitor), logged to its
own monitor.log, never the host. Runtime commands (create, start, kill/pause/resume/update, the
final delete, exec) run as children whose exit, output and console socket are loop events, so one
container's slow runtime call does not stall the others. Stdlib only: memory per idle container
matters.

Socket protocol (monitor.sock): the client sends one JSON line, {"op": ...}; the monitor answers
with 8-byte frames `[kind][0 0 0][len u32 BE][payload]` where kind 1 = stdout, 2 = stderr and
3 = a control message (JSON). After an "attach" or "exec" line the client's bytes are stdin, its
half-close is stdin EOF.
  start            -> runs `runtime start`; control {"ok": true} | {"error": "..."}
  wait             -> control {"exit": code, "oom": bool} once the container is gone
  attach           -> live output frames (stdout/stderr flags), control {"exit": ...} at the end
  resize h w       -> TIOCSWINSZ on the pty; control {"ok": true}
  exec             -> runs `runtime exec` (process file, tty, stdin); frames; control {"exit": code}
  exec_resize      -> resize an exec's pty
  runtime args     -> `runtime kill|pause|resume|update ...`; control {"rc": n, "out": "..."}
  ping             -> control {"ok": true, "pid": init pid, "finished": bool}

With "runtime_inproc" (berth's own runtime) the runtime's CLI runs in a fork of the host (modules
preloaded there) instead of a fresh interpreter; the fork keeps only its stdio, so no fd of any
container reaches another container's runtime or processes.
"""

import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import sys
import termios
import time

STDOUT, STDERR, CONTROL = 1, 2, 3
PR_SET_CHILD_SUBREAPER = 36
_PARTIAL = 16 * 1024  # a line longer than this is logged in pieces, as docker does
_DRAIN_AFTER_EXIT = 2.0
# Flow control: a client whose stdin the container does not read yet is not read past _STDIN_HIGH
# buffered bytes (until _STDIN_LOW); container output is not read while an attached client has more
# than _OUT_HIGH bytes unsent (until _OUT_LOW). Nothing in the loop ever blocks on a peer.
_STDIN_HIGH, _STDIN_LOW = 1 << 20, 256 << 10
_OUT_HIGH, _OUT_LOW = 2 << 20, 512 << 10
_STALLED = 10.0  # after the exit: seconds without progress before an attached reader is given up
_LINGER = 5.0  # seconds a client that got its last message has to close before we close it
# Ignored signals survive execve: everything we ignore must be reset for the runtime and container.
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXFSZ)  # seconds to wait for the pipes to close after init died


_encode_str = json.encoder.encode_basestring  # the C implementation when available


def frame(kind, payload):
    return struct.pack(">BxxxI", kind, len(payload)) + payload


def control(obj):
    return frame(CONTROL, json.dumps(obj).encode())


def prctl(option, arg):
    """prctl(2) through berth.linux.cdll (the _ctypes core: the ctypes package would cost every
    monitor ~100 kB private and ~400 kB resident memory), ctypes if that is missing."""
    try:
        from berth.linux.cdll import Lib, get_errno

        libc = Lib()
    except ImportError:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        get_errno = ctypes.get_errno
    if libc.prctl(option, arg, 0, 0, 0) != 0:
        raise OSError(get_errno(), f"prctl({option})")


def set_subreaper():
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def rfc3339nano(ns):
    s, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + ".%09dZ" % frac  # noqa: UP031


def write_file_atomic(path, data):
    """tmp + rename, no fsync: the exec root (exit file, monitor.pid) does not outlive a reboot, a crash
    of any process keeps the page cache, and an fsync would stall every container's loop."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


class JsonLog:
    """Docker's json-file format, rotated by size: <path>, <path>.1, ... <path>.(max_files-1)."""

    def __init__(self, path, max_size, max_files, warn=None):
        self.path = path
        self.warn = warn or (lambda msg: sys.stderr.write(msg))
        self.max_size = max_size
        self.max_files = max(1, max_files)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.partial = {STDOUT: b"", STDERR: b""}
        self.errors = 0

    def _rotate(self):
        os.close(self.fd)
        if self.max_files > 1:
            for i in range(self.max_files - 1, 0, -1):
                src = self.path if i == 1 else "%s.%d" % (self.path, i - 1)  # noqa: UP031
                try:
                    os.rename(src, "%s.%d" % (self.path, i))  # noqa: UP031
                except FileNotFoundError:
                    pass
        else:
            os.truncate(self.path, 0)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = 0

    def _records(self, kind, pieces):
        """Docker json-file lines for `pieces` (bytes), one timestamp per read: built as text in
        one go (json.dumps per line would dominate the monitor's time on chatty containers)."""
        t = rfc3339nano(time.time_ns())
        tail = ',"stream":"%s","time":"%s"}\n' % ("stdout" if kind == STDOUT else "stderr", t)  # noqa: UP031
        enc = _encode_str
        return "".join('{"log":' + enc(p.decode("utf-8", "replace")) + tail for p in pieces).encode()

    def _write(self, kind, pieces):
        if not pieces:
            return
        data = self._records(kind, pieces)
        try:
            if self.max_size and self.size + len(data) > self.max_size:
                # Crossing the size limit: record by record so each file stays under it.
                for p in pieces:
                    rec = self._records(kind, [p])
                    if self.size + len(rec) > self.max_size and self.size > 0:
                        self._rotate()
                    os.write(self.fd, rec)
                    self.size += len(rec)
                return
            while data:
                n = os.write(self.fd, data)
                data = data[n:]
                self.size += n
        except OSError as e:  # a full disk loses log lines, not the container
            self.errors += 1
            if self.errors == 1:
                self.warn(f"log write failed: {e}\n")

    def write(self, kind, data):
        buf = self.partial[kind] + data
        pieces = buf.split(b"\n")
        rest = pieces.pop()
        out = [p + b"\n" for p in pieces]
        while len(rest) >= _PARTIAL:
            out.append(rest[:_PARTIAL])
            rest = rest[_PARTIAL:]
        self.partial[kind] = rest
        self._write(kind, out)

    def flush(self):
        for kind in (STDOUT, STDERR):
            if self.partial[kind]:
                self._write(kind, [self.partial[kind]])
                self.partial[kind] = b""


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.fd = sock.fileno()
        self.inbuf = b""
        self.out = bytearray()
        self.op = None
        self.want = (True, True)  # stdout, stderr
        self.stdin_fd = None  # where this client's bytes go after the header line
        self.stdin_once = False
        self.closing = False  # close once `out` is flushed
        self.read_closed = False
        self.exec = None
        self.paused = False  # not read: its stdin's buffer is full
        self.full = False  # too much unsent output: the output it gets is not read meanwhile
        self.progress = time.monotonic()  # when it last took output
        self.linger_until = None  # all sent and our side shut: read to EOF (peer's close), then close


class Sink:
    """Buffered non-blocking writes to one container-side stdin fd (a pipe or a pty master)."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray()
        self.pfd = None  # a dup of fd polled for POLLOUT (fd itself may be a polled pty master)
        self.close_when_empty = False
        self.paused = set()  # clients not read until the buffer drains


class Exec:
    def __init__(self, client, tty):
        self.client = client
        self.tty = tty
        self.fds = {}  # fd -> stream kind
        self.stdin_fd = None
        self.pid = None  # the runtime's pid (foreground) or the process's pid (detached, tty)
        self.runtime_pid = None
        self.status = None
        self.master = None
        self.console = (None, None)  # (listener, path) until the runtime sent the pty (tty)
        self.pid_file = None
        self.err = None  # the runtime's stderr pipe while `runtime exec --detach` runs (tty)
        self.err_out = b""
        self.runtime_status = None
        self.pending_in = b""  # what the client sent before the process was there
        self.master_pending = False  # master received, not handed to the loop yet


class _Children:
    """This monitor's view of the host's child table (pid -> (monitor, callback(status)))."""

    def __init__(self, host, mon):
        self.table = host.children
        self.mon = mon

    def __setitem__(self, pid, cb):
        self.table[pid] = (self.mon, cb)

    def pop(self, pid, default=None):
        v = self.table.pop(pid, None)
        return default if v is None else v[1]


class Monitor:
    def __init__(self, cfg, host):
        self.cfg = cfg
        self.id = cfg["id"]
        self.tty = cfg.get("tty", False)
        self.host = host
        self.poll = host.poll
        self.handlers = host.handlers  # fd -> callable(events), shared by every monitor of the host
        self.env = host.env
        self.errlog = os.open(cfg.get("monitor_log") or os.path.join(cfg["rundir"], "monitor.log"),
                              os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.clients = {}
        self.children = _Children(host, self)
        self.orphan_status = host.orphan_status  # pid -> status for pids reaped before we knew them
        self.listener = None
        self.sock_ino = None
        self.closed = False
        self.started = False  # a "start" request came
        self.finishing = False  # the container is gone, `runtime delete` runs
        self.jobs = set()  # output pipes of runtime commands in flight (run_async)
        self.console = None  # (listener, path) while `runtime create` may send the pty master
        self.create_err = None  # the runtime's stderr pipe while `runtime create` runs
        self.pending = 0  # runtime commands in flight
        self.exit_msg = None
        self.out_fds = {}  # container output fd -> kind
        self.stdin_w = None
        self.master = None
        self.init_pid = None
        self.exit_status = None
        self.exit_deadline = None
        self.finished = False
        self.dirfd = -1
        self.log = None
        self.log = JsonLog(cfg["log_path"], cfg.get("log_max_size", 0), cfg.get("log_max_files", 1), self.warn)
        self.execs = {}
        self.lingering = 0  # clients in _linger
        self.sinks = {}  # stdin fd -> Sink
        self.out_paused = False
        self.dirfd = os.open(cfg["rundir"], os.O_PATH | os.O_DIRECTORY)

    # -- loop plumbing -------------------------------------------------------------------------
    def warn(self, msg):
        """A line for this container's monitor.log."""
        try:
            os.write(self.errlog, f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {msg.rstrip()}\n".encode())
        except OSError:
            pass

    def watch(self, fd, mask, cb):
        self.host.watch(fd, mask, cb, self)

    def unwatch(self, fd):
        self.host.unwatch(fd, self)

    def spawn(self, argv, stdin=None, stdout=None, stderr=None, on_exit=None):
        if self.cfg.get("runtime_inproc") and argv and argv[0] == self.cfg["runtime"]:
            pid = self._fork_runtime(argv, stdin, stdout, stderr)
            if on_exit:
                if pid in self.orphan_status:
                    on_exit(self.orphan_status.pop(pid))
                else:
                    self.children[pid] = on_exit
            return pid
        acts = []
        devnull = os.open("/dev/null", os.O_RDWR)
        for target, fd in ((0, stdin), (1, stdout), (2, stderr)):
            acts.append((os.POSIX_SPAWN_DUP2, devnull if fd is None else fd, target))
        try:
            self.host.child_limits(True)
            try:
                pid = os.posix_spawn(argv[0], argv, self.env, file_actions=acts, setsigdef=_DEFAULT_SIGNALS,
                                     setsigmask=())
            finally:
                self.host.child_limits(False)
        finally:
            os.close(devnull)
        if on_exit:
            if pid in self.orphan_status:
                on_exit(self.orphan_status.pop(pid))
            else:
                self.children[pid] = on_exit
        return pid

    def _fork_runtime(self, argv, stdin, stdout, stderr):
        """berth-runtime without an interpreter start: fork and call its CLI in the child. The
        host preloaded its modules, so this costs a fork instead of ~45 ms of start-up."""
        pid = os.fork()
        if pid:
            return pid
        rc = 1
        try:
            signal.set_wakeup_fd(-1)
            self.host.child_limits(True)
            for sig in _DEFAULT_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            devnull = os.open("/dev/null", os.O_RDWR)
            for target, fd in ((0, stdin), (1, stdout), (2, stderr)):
                os.dup2(devnull if fd is None else fd, target)
            os.close(devnull)
            # No exec here, so close-on-exec protects nothing: drop every monitor fd (a kept copy of
            # a stdin pipe's write end would keep the process from ever seeing EOF).
            os.closerange(3, 0x7FFFFFFF)  # close_range(2): one call, whatever the fd limit
            os.environ.clear()
            os.environ.update(self.env)
            from berth.runtime.cli import main as runtime_main

            sys.argv = list(argv)
            rc = runtime_main(list(argv[1:])) or 0
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException as e:  # noqa: BLE001 - the child must never return into the monitor
            try:
                os.write(2, f"berth-runtime (in-process): {type(e).__name__}: {e}\n".encode())
            except OSError:
                pass
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os._exit(rc)

    def run_async(self, argv, done):
        """Run a runtime command without stopping the host's loop: `done(exit code, output text)`
        once it exited and its output pipe is closed. A raising `done` is logged here."""
        r, w = os.pipe()
        job = {"out": [], "eof": False, "status": None}

        def complete():
            if not job["eof"] or job["status"] is None or self.closed:
                return
            self.pending -= 1
            out = b"".join(job["out"]).decode("utf-8", "replace").strip()
            try:
                done(os.waitstatus_to_exitcode(job["status"]), out)
            except Exception:  # noqa: BLE001 - this container's monitor fails, not the host
                self.host.fail(self)

        def on_read(_ev):
            try:
                b = os.read(r, 65536)
            except BlockingIOError:
                return
            except OSError:
                b = b""
            if b:
                job["out"].append(b)
                return
            self.unwatch(r)
            self.jobs.discard(r)
            os.close(r)
            job["eof"] = True
            complete()

        def on_exit(st):
            job["status"] = st
            complete()

        try:
            self.spawn(argv, stdout=w, stderr=w, on_exit=on_exit)
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        os.set_blocking(r, False)
        self.jobs.add(r)
        self.pending += 1
        self.watch(r, select.POLLIN, on_read)

    def reply(self, cl, obj):
        """The one answer of a request that is over; nothing if its client is gone meanwhile."""
        if self.clients.get(cl.fd) is cl:
            self.send(cl, control(obj))
            cl.closing = True
            self.flush(cl)

    def run_sync(self, argv, stdin=None):
        """Run a runtime command to completion; returns (exit code, stderr text)."""
        r, w = os.pipe()
        pid = self.spawn(argv, stdin=stdin, stdout=w, stderr=w)
        os.close(w)
        chunks = []
        while True:
            try:
                b = os.read(r, 65536)
            except InterruptedError:
                continue
            if not b:
                break
            chunks.append(b)
        os.close(r)
        while True:
            try:
                _, st = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                st = self.orphan_status.pop(pid, 0)
                break
        return os.waitstatus_to_exitcode(st), b"".join(chunks).decode("utf-8", "replace").strip()

    def runtime(self, *args):
        c = self.cfg
        return [c["runtime"], "--root", c["runtime_root"], *args]

    def reap(self):
        self.host.reap()

    # -- container lifecycle -----------------------------------------------------------------
    def create(self, done):
        """`runtime create`, without stopping the host's loop: `done(None)` once the container
        exists (init pid known, output watched), `done("error text")` if it could not be made."""
        c = self.cfg
        args = ["create", "--bundle", c["bundle"], "--pid-file", c["pid_file"]]
        stdin_r = out_w = err_w = None
        if self.tty:
            lsock, path = self._console_listener(os.path.join(c["rundir"], "console.sock"))
            self.console = (lsock, path)
            args += ["--console-socket", path]
        else:
            if c.get("stdin"):
                stdin_r, self.stdin_w = os.pipe()
                os.set_blocking(self.stdin_w, False)
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            self.out_fds = {out_r: STDOUT, err_r: STDERR}
        args.append(self.id)
        # The runtime's own stderr goes to a pipe of ours so its error message reaches berthd;
        # the container's stdio are the pipes given here (runc passes its fds 0-2 to init).
        er, ew = os.pipe()
        self.create_err = er
        def finish(st):
            if self.closed:
                return
            try:
                msg = self._created(st, err_w is not None)
            except Exception as e:  # noqa: BLE001 - reported to berthd as this container's error
                self.warn("create:\n" + __import__("traceback").format_exc())
                msg = str(e) or type(e).__name__
            done(msg)

        def on_exit(st):
            if self.console is not None:
                self._take_console()  # connected before it exited: it may not be read yet
            finish(st)

        try:
            self.spawn(self.runtime(*args), stdin=stdin_r, stdout=out_w,
                       stderr=ew if err_w is None else err_w, on_exit=on_exit)
        finally:
            for fd in (ew, stdin_r, out_w, err_w):
                if fd is not None:
                    os.close(fd)
        if self.console is not None and self.console[0] is not None:
            self.watch(self.console[0].fileno(), select.POLLIN, lambda _ev: self._take_console())

    def _take_console(self):
        """Receive the pty master from the runtime (console socket), once."""
        lsock, path = self.console
        if lsock is None:
            return
        lsock.setblocking(False)
        ready, fd = self._accept_master(lsock, "console socket")
        if not ready:
            return
        if fd is not None:
            self.master = fd
        self._close_console()

    def _accept_master(self, lsock, what):
        """A pty master the runtime sends over a console socket: (False, None) while nobody has
        connected yet, else (True, the fd or None when it failed: logged)."""
        try:
            conn, _ = lsock.accept()
        except BlockingIOError:
            return False, None
        except OSError as e:
            self.warn("{}: {}".format(what, e))  # noqa: UP032
            return True, None
        try:
            conn.settimeout(10)  # it sends right after connecting
            return True, self._recv_fd(conn)
        except OSError as e:
            self.warn("{}: {}".format(what, e))  # noqa: UP032
            return True, None
        finally:
            conn.close()

    def _close_console(self):
        if self.console is not None:
            self.console = self._close_listener(self.console)

    def _close_listener(self, console):
        """Stop listening on a console socket (listener, path); -> (None, path)."""
        lsock, path = console
        if lsock is not None:
            self.unwatch(lsock.fileno())
            lsock.close()
            try:
                os.unlink(path)
            except OSError:
                pass
        return None, path

    def _created(self, st, piped):
        """The runtime's create exited with status `st`: None if the container exists, else the
        error text."""
        self._close_console()
        rc = os.waitstatus_to_exitcode(st)
        msg = b""
        if not piped or rc != 0:
            os.set_blocking(self.create_err, False)
            try:
                msg = os.read(self.create_err, 65536)
            except OSError:
                pass
        os.close(self.create_err)
        self.create_err = None
        if rc != 0 and piped:
            # stderr of a failed create went to the container's stderr pipe: collect it.
            for fd, kind in self.out_fds.items():
                if kind == STDERR:
                    os.set_blocking(fd, False)
                    try:
                        msg += os.read(fd, 65536)
                    except OSError:
                        pass
        if self.master is not None:
            os.set_blocking(self.master, False)
            self.out_fds = {self.master: STDOUT}
            self.stdin_w = self.master
        if rc != 0:
            return msg.decode("utf-8", "replace").strip() or "runtime create failed with exit code %d" % rc  # noqa: UP031
        with open(self.cfg["pid_file"]) as f:
            self.init_pid = int(f.read().strip())
        if self.init_pid in self.orphan_status:
            self._init_exited(self.orphan_status.pop(self.init_pid))
        else:
            self.children[self.init_pid] = self._init_exited
        for fd in self.out_fds:
            os.set_blocking(fd, False)
            self.watch(fd, select.POLLIN, self._make_reader(fd))
        return None

    def short(self, path):
        """AF_UNIX paths are limited to 108 bytes: reach long run dirs through our dir fd."""
        if len(path) < 100:
            return path
        d, name = os.path.split(path)
        if d != self.cfg["rundir"]:
            return path
        return "/proc/%d/fd/%d/%s" % (os.getpid(), self.dirfd, name)  # noqa: UP031

    def _console_listener(self, path):
        path = self.short(path)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(1)
        return s, path

    @staticmethod
    def _recv_fd(conn):
        msg, anc, _flags, _addr = conn.recvmsg(4096, socket.CMSG_SPACE(4 * 4))
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds = struct.unpack("%di" % (len(data) // 4), data[: len(data) - len(data) % 4])  # noqa: UP031
                for extra in fds[1:]:
                    os.close(extra)
                # SCM_RIGHTS fds arrive inheritable: a spawned runtime of another container
                # would get a copy of this pty.
                os.set_inheritable(fds[0], False)
                return fds[0]
        raise OSError("no file descriptor received on the console socket")

    def _make_reader(self, fd):
        def on_ready(_ev):
            kind = self.out_fds.get(fd)
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno != errno.EIO:  # EIO: the pty's other side is closed
                    raise
                data = b""
            if not data:
                self.unwatch(fd)
                self.out_fds.pop(fd, None)
                if fd != self.master:
                    os.close(fd)
                self._maybe_finish()
                return
            self.log.write(kind, data)
            self.broadcast(kind, data)
        return on_ready

    def broadcast(self, kind, data):
        fr = frame(kind, data)
        for cl in list(self.clients.values()):
            if cl.op == "attach" and cl.want[kind - 1]:
                self.send(cl, fr)

    def _init_exited(self, status):
        self.exit_status = status
        self.exit_deadline = time.monotonic() + _DRAIN_AFTER_EXIT
        self._maybe_finish()

    def _maybe_finish(self):
        if self.exit_status is None or self.finished or self.finishing:
            return
        if self.out_fds and time.monotonic() < self.exit_deadline:
            return
        if self.pending:
            return  # a runtime start/kill/... still runs: `delete` comes after it, as before
        self.finishing = True
        for fd in list(self.out_fds):
            self.unwatch(fd)
        self.log.flush()
        code = os.waitstatus_to_exitcode(self.exit_status)
        if code < 0:
            code = 128 - code
        oom = self._oom_killed()
        finished_at = rfc3339nano(time.time_ns())
        self.run_async(self.runtime("delete", "--force", self.id),
                       lambda _rc, _out: self._finished({"exit": code, "oom": oom, "finishedAt": finished_at}))

    def _finished(self, msg):
        """`runtime delete` is done: record the exit and tell whoever waits."""
        self.finished = True
        self.exit_msg = msg
        if self.started:
            # Never started: berthd undoes such a container itself (its restore removes the run
            # dir meanwhile, and a file written into it now would keep the rmdir from succeeding).
            try:
                write_file_atomic(self.cfg["exit_file"], json.dumps(msg).encode())
            except OSError as e:  # whoever waits still hears it
                self.warn(f"exit file: {e}")
        for cl in list(self.clients.values()):
            if cl.op in ("attach", "wait"):
                self.send(cl, control(msg))
                cl.closing = True
                self.flush(cl)

    def _oom_killed(self):
        before = self.cfg.get("oom_before", 0)
        for path in self.cfg.get("oom_files", []):
            try:
                with open(path) as f:
                    for line in f:
                        k, _, v = line.partition(" ")
                        if k == "oom_kill" and int(v) > before:
                            return True
            except (OSError, ValueError):
                continue
        return False

    # -- clients -----------------------------------------------------------------------------
    def accept(self, _ev):
        try:
            s, _ = self.listener.accept()
        except BlockingIOError:
            return
        s.setblocking(False)
        cl = Client(s)
        self.clients[cl.fd] = cl
        self.watch(cl.fd, select.POLLIN, lambda ev, cl=cl: self.on_client(cl, ev))

    def send(self, cl, data):
        cl.out += data
        self.flush(cl)

    def flush(self, cl):
        if self.clients.get(cl.fd) is not cl:  # gone (the number may be reused)
            return
        while cl.out:
            try:
                n = cl.sock.send(cl.out)
            except BlockingIOError:
                break
            except OSError:
                self.drop(cl)
                return
            del cl.out[:n]
            cl.progress = time.monotonic()
            if self.out_paused and self.exit_status is not None and not self.finished:
                # Still delivering what the container wrote before it exited: keep its pipes.
                self.exit_deadline = max(self.exit_deadline, time.monotonic() + _DRAIN_AFTER_EXIT)
        full = len(cl.out) > _OUT_HIGH or (cl.full and len(cl.out) > _OUT_LOW)
        if full != cl.full:
            cl.full = full
            self._output_flow()
        mask = 0 if cl.read_closed or cl.paused else select.POLLIN
        if cl.out:
            mask |= select.POLLOUT
        elif cl.closing:
            self._linger(cl)
            return
        try:
            self.poll.modify(cl.fd, mask)
        except (KeyError, FileNotFoundError):
            pass

    def _output_flow(self):
        """Stop reading container (and exec) output while a client it goes to is behind: the
        container blocks on its pipe instead of the monitor buffering without bound."""
        paused = any(c.full and c.op == "attach" for c in self.clients.values())
        if paused != self.out_paused:
            self.out_paused = paused
            for fd in self.out_fds:
                self._modify(fd, 0 if paused else select.POLLIN)
        for ex in self.execs.values():
            full = ex.client.full and self.clients.get(ex.client.fd) is ex.client
            for fd in ex.fds:
                self._modify(fd, 0 if full else select.POLLIN)

    def _modify(self, fd, mask):
        if fd in self.handlers:
            try:
                self.poll.modify(fd, mask)
            except (KeyError, FileNotFoundError, OSError):
                pass

    def _linger(self, cl):
        """Everything is sent: end our side, and close once the peer closes (or after _LINGER s).
        Closing at once could fail the peer's pending write (EPIPE) and asyncio then tears its
        connection down before it reads what we sent last (an exec's exit code)."""
        if cl.read_closed:
            self.drop(cl)  # the peer ended its side: nothing more can come
            return
        if cl.linger_until is None:
            try:
                cl.sock.shutdown(socket.SHUT_WR)
            except OSError:
                self.drop(cl)
                return
            cl.linger_until = time.monotonic() + _LINGER
            self.lingering += 1
        try:
            self.poll.modify(cl.fd, select.POLLIN)
        except (KeyError, FileNotFoundError):
            pass

    def drop(self, cl):
        if self.clients.get(cl.fd) is not cl:
            return  # dropped already: its fd number may be another client's by now
        if cl.linger_until is not None:
            self.lingering -= 1
        self.unwatch(cl.fd)
        self.clients.pop(cl.fd, None)
        for sink in self.sinks.values():
            sink.paused.discard(cl)
        if cl.full:
            cl.full = False
            self._output_flow()
        if cl.stdin_fd is not None and cl.stdin_once and cl.stdin_fd not in (self.master,):
            self._close_stdin(cl.stdin_fd)
        if not cl.read_closed:
            # Read (and drop) what the peer sent that nobody will use: a unix socket closed with unread
            # input makes the peer's next read fail with ECONNRESET, and asyncio then discards the
            # frames it had buffered but not handed out yet (an exec's exit code among them).
            try:
                while cl.sock.recv(65536):
                    pass
            except OSError:
                pass
        try:
            cl.sock.close()
        except OSError:
            pass

    def _close_stdin(self, fd, force=False):
        """EOF on a stdin: once what is buffered for it is written (at once with `force`)."""
        if fd == self.stdin_w:
            self.stdin_w = None
        for ex in self.execs.values():
            if ex.stdin_fd == fd:
                ex.stdin_fd = None
        sink = self.sinks.get(fd)
        if sink is not None and sink.buf and not force:
            sink.close_when_empty = True
            return
        if sink is not None:
            self._end_sink(sink)
        try:
            os.close(fd)
        except OSError:
            pass

    def _end_sink(self, sink):
        """Forget a sink (its fd stays open): its pending bytes are dropped, its clients resumed."""
        self.sinks.pop(sink.fd, None)
        if sink.pfd is not None:
            self.unwatch(sink.pfd)
            os.close(sink.pfd)
            sink.pfd = None
        sink.buf = bytearray()
        self._resume(sink)

    def _resume(self, sink):
        paused, sink.paused = sink.paused, set()
        for cl in paused:
            cl.paused = False
            if self.clients.get(cl.fd) is cl:
                self.flush(cl)

    def _sink_ready(self, sink):
        try:
            n = os.write(sink.fd, sink.buf)
        except BlockingIOError:
            return
        except OSError:  # EPIPE/EIO: nobody reads this stdin any more
            self._stdin_gone(sink)
            return
        del sink.buf[:n]
        if len(sink.buf) <= _STDIN_LOW:
            self._resume(sink)
        if not sink.buf:
            self.unwatch(sink.pfd)
            os.close(sink.pfd)
            sink.pfd = None
            if sink.close_when_empty:
                self._close_stdin(sink.fd)
            else:
                self.sinks.pop(sink.fd, None)

    def _forget_stdin(self, fd):
        """`fd` is about to be closed by its owner: nothing may write to it (or its number) again."""
        sink = self.sinks.get(fd)
        if sink is not None:
            self._end_sink(sink)
        for cl in self.clients.values():
            if cl.stdin_fd == fd:
                cl.stdin_fd = None
        for ex in self.execs.values():
            if ex.stdin_fd == fd:
                ex.stdin_fd = None

    def _stdin_gone(self, sink):
        """Nobody reads this stdin any more (or the container is gone): stop writing to it."""
        fd = sink.fd
        self._end_sink(sink)
        for cl in self.clients.values():
            if cl.stdin_fd == fd:
                cl.stdin_fd = None
        if fd == self.master or any(fd in ex.fds for ex in self.execs.values()):
            return  # a pty master: also the output side
        if fd == self.stdin_w and not self.finished:
            return  # closed when the container finishes
        for ex in self.execs.values():
            if ex.stdin_fd == fd:
                ex.stdin_fd = None
        if fd == self.stdin_w:
            self.stdin_w = None
        try:
            os.close(fd)
        except OSError:
            pass

    def on_client(self, cl, ev):
        if cl.linger_until is not None:
            try:
                gone = not cl.sock.recv(65536)  # what it still sends is of no use now
            except BlockingIOError:
                gone = False
            except OSError:
                gone = True
            if gone or ev & (select.POLLHUP | select.POLLERR):
                self.drop(cl)
            return
        if ev & select.POLLOUT:
            self.flush(cl)
        if not ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
            return
        if cl.read_closed:
            if ev & (select.POLLHUP | select.POLLERR) and self.clients.get(cl.fd) is cl:
                self.drop(cl)  # gone both ways: nothing more can be sent (and HUP would spin)
            return
        if cl.paused and not ev & (select.POLLHUP | select.POLLERR):
            return
        try:
            data = cl.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            cl.read_closed = True
            if cl.stdin_fd is not None:
                if cl.stdin_once or cl.stdin_fd != self.stdin_w:
                    if cl.stdin_fd == self.master or (cl.exec and cl.exec.tty):
                        pass  # a pty: EOF is the user's ^D, not a close
                    else:
                        self._close_stdin(cl.stdin_fd)
                cl.stdin_fd = None
            if cl.op in (None, "start", "resize", "exec_resize") or (cl.op == "attach" and not cl.out
                                                                     and self.finished):
                self.drop(cl)
            else:
                self.flush(cl)
            return
        if cl.op is None:
            cl.inbuf += data
            nl = cl.inbuf.find(b"\n")
            if nl < 0:
                if len(cl.inbuf) > 65536:
                    self.drop(cl)
                return
            line, rest = cl.inbuf[:nl], cl.inbuf[nl + 1:]
            cl.inbuf = b""
            try:
                req = json.loads(line)
            except ValueError:
                self.send(cl, control({"error": "bad request line"}))
                cl.closing = True
                self.flush(cl)
                return
            if not isinstance(req, dict):
                self.send(cl, control({"error": "bad request line"}))
                cl.closing = True
                self.flush(cl)
                return
            try:
                self.dispatch(cl, req)
            except Exception as e:  # noqa: BLE001 - this request fails, not the monitor
                import traceback

                self.warn(f"request {req.get('op')!r} failed:\n{traceback.format_exc()}")
                for k, ex in list(self.execs.items()):
                    if ex.client is cl and ex.pid is None:
                        del self.execs[k]
                cl.exec = None
                cl.op = "failed"
                self.send(cl, control({"error": f"{type(e).__name__}: {e}"}))
                cl.closing = True
                self.flush(cl)
                return
            data = rest
            if not data:
                return
        if cl.stdin_fd is not None:
            self.write_stdin(cl, data)
        elif cl.exec is not None and cl.exec.pid is None and cl.exec.runtime_pid is not None:
            cl.exec.pending_in += data  # a tty exec still starting

    def write_stdin(self, cl, data):
        """Never blocks: a container busy writing before it reads its stdin must still have its
        output drained. What the pipe does not take is buffered; past _STDIN_HIGH the client is
        not read until the container catches up."""
        fd = cl.stdin_fd
        sink = self.sinks.get(fd)
        if sink is not None and sink.close_when_empty:
            return  # already at EOF
        if sink is None:
            sink = self.sinks[fd] = Sink(fd)
            os.set_blocking(fd, False)
        if not sink.buf:
            try:
                n = os.write(fd, data)
            except BlockingIOError:
                n = 0
            except OSError:
                self._stdin_gone(sink)
                return
            data = data[n:]
            if not data:
                if sink.pfd is None and not sink.close_when_empty:
                    self.sinks.pop(fd, None)
                return
        sink.buf += data
        if sink.pfd is None:
            sink.pfd = os.dup(fd)
            self.watch(sink.pfd, select.POLLOUT, lambda ev, sink=sink: self._sink_ready(sink))
        if len(sink.buf) > _STDIN_HIGH and not cl.paused:
            cl.paused = True
            sink.paused.add(cl)
            self.flush(cl)

    def dispatch(self, cl, req):
        op = req.get("op")
        cl.op = op
        if op == "wait":
            if self.finished:
                self.send(cl, control(self.exit_msg))
                cl.closing = True
                self.flush(cl)
        elif op == "attach":
            cl.want = (bool(req.get("stdout", True)), bool(req.get("stderr", True)))
            if req.get("stdin") and self.stdin_w is not None:
                cl.stdin_fd = self.stdin_w
                cl.stdin_once = bool(self.cfg.get("stdin_once"))
            self.send(cl, control({"ok": True}))
            if self.finished:
                self.send(cl, control(self.exit_msg))
                cl.closing = True
                self.flush(cl)
        elif op == "start":
            self.started = True
            self.run_async(self.runtime("start", self.id),
                           lambda rc, msg: self.reply(cl, {"ok": True} if rc == 0 else
                                                      {"error": msg or "runtime start failed"}))
        elif op == "resize":
            ok = self.master is not None and _resize(self.master, req.get("h", 0), req.get("w", 0))
            self.send(cl, control({"ok": bool(ok)}))
            cl.closing = True
            self.flush(cl)
        elif op == "exec":
            self.start_exec(cl, req)
        elif op == "exec_resize":
            ex = self.execs.get(req.get("id"))
            ok = ex is not None and ex.master is not None and _resize(ex.master, req.get("h", 0), req.get("w", 0))
            self.send(cl, control({"ok": bool(ok)}))
            cl.closing = True
            self.flush(cl)
        elif op == "runtime":
            # kill / pause / resume / update through this (warm) process: no interpreter start.
            args = [str(a) for a in req.get("args") or []]
            if not args or args[0] not in ("kill", "pause", "resume", "update"):
                self.send(cl, control({"error": "runtime command not allowed: %r" % args[:1]}))  # noqa: UP031
            else:
                self.run_async(self.runtime(*args), lambda rc, out: self.reply(cl, {"rc": rc, "out": out}))
                return
            cl.closing = True
            self.flush(cl)
        elif op == "ping":
            self.send(cl, control({"ok": True, "pid": self.init_pid, "finished": self.finished}))
            cl.closing = True
            self.flush(cl)
        else:
            self.send(cl, control({"error": "unknown op {!r}".format(op)}))  # noqa: UP032
            cl.closing = True
            self.flush(cl)

    # -- exec --------------------------------------------------------------------------------
    def start_exec(self, cl, req):
        if not isinstance(req.get("process"), str):
            raise ValueError("exec: no process file")
        tty = bool(req.get("tty"))
        ex = Exec(cl, tty)
        eid = req.get("id") or str(len(self.execs))
        self.execs[eid] = ex
        cl.exec = ex
        cl.op = "exec"
        args = ["exec", "--process", req["process"]]
        stdin_r = out_w = err_w = None
        if tty:
            ex.console = self._console_listener(os.path.join(self.cfg["rundir"], "exec-{}.sock".format(eid[:12])))  # noqa: UP032
            ex.pid_file = os.path.join(self.cfg["rundir"], "exec-{}.pid".format(eid[:12]))  # noqa: UP032
            args += ["--detach", "--console-socket", ex.console[1], "--pid-file", ex.pid_file]
        else:
            if req.get("stdin"):
                stdin_r, ex.stdin_fd = os.pipe()
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            ex.fds = {out_r: STDOUT, err_r: STDERR}
        args.append(self.id)
        er, ew = os.pipe()
        try:
            pid = self.spawn(self.runtime(*args), stdin=stdin_r, stdout=out_w if out_w is not None else ew,
                             stderr=err_w if err_w is not None else ew,
                             on_exit=(lambda st, ex=ex: self._exec_runtime_exited(ex, st)) if tty else None)
        except OSError as e:
            os.close(er)
            self._exec_failed(ex, "exec: {}".format(e))  # noqa: UP032
            return
        finally:
            os.close(ew)
            for fd in (stdin_r, out_w, err_w):
                if fd is not None:
                    os.close(fd)
        ex.runtime_pid = pid
        if tty:
            # `runtime exec --detach` sends the pty and exits: both are loop events. Meanwhile
            # the client is not read (what it sends is the pty's input).
            ex.err = er
            os.set_blocking(er, False)
            self.watch(ex.console[0].fileno(), select.POLLIN, lambda _ev, ex=ex: self._exec_console(ex))
            self.watch(er, select.POLLIN, lambda _ev, ex=ex: self._exec_err(ex))
            cl.paused = True
            self.flush(cl)
            return
        os.close(er)
        ex.pid = pid
        self.children[pid] = lambda st, ex=ex: self._exec_exited(ex, st)
        self._exec_go(ex)

    def _exec_go(self, ex):
        """The exec's process runs: its client's bytes become its stdin, its output goes out."""
        cl = ex.client
        cl.stdin_fd = ex.stdin_fd
        cl.stdin_once = True
        if cl.read_closed and ex.stdin_fd is not None and not ex.tty:
            self._close_stdin(ex.stdin_fd)
        self.send(cl, control({"ok": True, "pid": ex.pid}))
        for fd in ex.fds:
            os.set_blocking(fd, False)
            self.watch(fd, select.POLLIN, self._exec_reader(ex, fd))
        if cl.paused:
            cl.paused = False
            self.flush(cl)
        if ex.pending_in and cl.stdin_fd is not None:
            data, ex.pending_in = ex.pending_in, b""
            self.write_stdin(cl, data)

    def _exec_failed(self, ex, msg):
        for k, v in list(self.execs.items()):
            if v is ex:
                del self.execs[k]
        self.reply(ex.client, {"error": msg, "exit": 126})

    def _exec_console(self, ex):
        lsock, path = ex.console
        if lsock is None:
            return
        ready, fd = self._accept_master(lsock, "exec console socket")
        if not ready:
            return
        if fd is not None:
            ex.master = fd
            ex.master_pending = True
        self._exec_console_close(ex)

    def _exec_console_close(self, ex):
        ex.console = self._close_listener(ex.console)

    def _exec_err(self, ex):
        try:
            b = os.read(ex.err, 65536)
        except BlockingIOError:
            return
        except OSError:
            b = b""
        if b:
            ex.err_out += b
            return
        self.unwatch(ex.err)
        os.close(ex.err)
        ex.err = None
        self._exec_started(ex)

    def _exec_runtime_exited(self, ex, st):
        ex.runtime_status = st
        self._exec_started(ex)

    def _exec_started(self, ex):
        """`runtime exec --detach` (tty) is over: go on with the process, or report its error."""
        if ex.runtime_status is None or ex.err is not None or ex.runtime_pid is None:
            return
        ex.runtime_pid = None  # once
        ex.master_pending = False
        if ex.console[0] is not None:
            ex.console[0].setblocking(False)
            self._exec_console(ex)  # connected before it exited: maybe not read yet
        self._exec_console_close(ex)
        rc = os.waitstatus_to_exitcode(ex.runtime_status)
        if rc != 0 or ex.master is None:
            if ex.master is not None:
                os.close(ex.master)
                ex.master = None
            msg = ex.err_out.decode("utf-8", "replace").strip()
            self._exec_failed(ex, msg or "exec failed (%d)" % rc)  # noqa: UP031
            return
        try:
            with open(ex.pid_file) as f:
                ex.pid = int(f.read().strip())
            os.unlink(ex.pid_file)
        except (OSError, ValueError):
            ex.pid = None
        os.set_blocking(ex.master, False)
        ex.fds = {ex.master: STDOUT}
        ex.stdin_fd = ex.master
        self._exec_go(ex)  # "ok" first: the process may be gone already (reaped meanwhile)
        if ex.pid is not None:
            if ex.pid in self.orphan_status:
                self._exec_exited(ex, self.orphan_status.pop(ex.pid))
            else:
                self.children[ex.pid] = lambda st, ex=ex: self._exec_exited(ex, st)

    def _exec_reader(self, ex, fd):
        def on_ready(_ev):
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.unwatch(fd)
                ex.fds.pop(fd, None)
                self._forget_stdin(fd)  # a pty master is also the exec's stdin
                os.close(fd)
                self._exec_maybe_done(ex)
                return
            cl = ex.client
            if self.clients.get(cl.fd) is cl:
                self.send(cl, frame(ex.fds.get(fd, STDOUT), data))
        return on_ready

    def _exec_exited(self, ex, status):
        code = os.waitstatus_to_exitcode(status)
        ex.status = 128 - code if code < 0 else code
        if ex.tty and ex.master is not None:
            # The pty may still hold output; the reader sees EIO once it is drained.
            pass
        self._exec_maybe_done(ex)

    def _exec_maybe_done(self, ex):
        if ex.status is None or (ex.fds and not ex.tty):
            return
        if ex.tty and ex.fds:
            # Drain what the pty holds, then close it.
            for fd in list(ex.fds):
                try:
                    while True:
                        data = os.read(fd, 65536)
                        if not data:
                            break
                        if self.clients.get(ex.client.fd) is ex.client:
                            self.send(ex.client, frame(STDOUT, data))
                except OSError:
                    pass
                self.unwatch(fd)
                self._forget_stdin(fd)
                os.close(fd)
            ex.fds = {}
            ex.stdin_fd = None
            ex.client.stdin_fd = None
        cl = ex.client
        for k, v in list(self.execs.items()):
            if v is ex:
                del self.execs[k]
                # For a berthd that restarted meanwhile (the old one's connection may look open
                # until a write fails): the code where the next one looks. No fsync: it only
                # has to outlive berthd, not the machine.
                path = os.path.join(self.cfg["rundir"], "exec-{}.exit".format(k[:12]))  # noqa: UP032
                try:
                    with open(path + ".tmp", "w") as f:
                        f.write(json.dumps({"exit": ex.status}))
                    os.rename(path + ".tmp", path)
                except OSError:
                    pass
        if self.clients.get(cl.fd) is cl:
            self.send(cl, control({"exit": ex.status}))
            cl.closing = True
            self.flush(cl)

    # -- in the host's loop ------------------------------------------------------------------
    def serve(self):
        path = self.short(self.cfg["sock"])
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        os.chmod(path, 0o600)
        self.sock_ino = os.stat(path).st_ino
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.watch(self.listener.fileno(), select.POLLIN, self.accept)

    def done(self):
        """Finished and nobody is waiting for anything more from this monitor."""
        return self.finished and not self.execs and not any(
            c.op in ("attach", "wait", "exec") for c in self.clients.values())

    def timeout(self):
        """Milliseconds the host's poll may sleep for this monitor's sake (None: no limit)."""
        if self.exit_status is not None and not self.finished and not self.finishing:
            return max(0, int((self.exit_deadline - time.monotonic()) * 1000)) + 1
        if self.finished or self.lingering:
            return 200
        return None

    def on_error(self, fd):
        """A callback of ours raised: log it here and give up that client or fd, not the monitor."""
        import traceback

        self.warn(traceback.format_exc())
        cl = self.clients.get(fd)
        if cl is not None:
            self.drop(cl)
        elif fd not in self.out_fds:
            self.unwatch(fd)

    def tick(self):
        """After every poll round: finish, close stdin, give up stalled readers."""
        self._maybe_finish()
        if self.finished and self.stdin_w is not None and self.stdin_w != self.master:
            self._close_stdin(self.stdin_w, force=True)
        if self.lingering:
            now = time.monotonic()
            for cl in [c for c in self.clients.values() if c.linger_until is not None and now > c.linger_until]:
                self.drop(cl)
        if self.finished:
            self._drop_stalled()
        if self.finished and self.sinks:
            for sink in list(self.sinks.values()):
                if not any(ex.stdin_fd == sink.fd for ex in self.execs.values()):
                    self._stdin_gone(sink)  # the container is gone: its stdin with it

    def _drop_stalled(self):
        """The container is gone: a client that stopped reading (a stuck attach) must not keep
        this monitor alive for ever."""
        now = time.monotonic()
        for cl in list(self.clients.values()):
            if cl.out and cl.op in ("attach", "wait") and now - cl.progress > _STALLED:
                self.drop(cl)

    def close(self):
        """Release everything this monitor holds in the host: its fds, its socket, its children
        (a monitor that failed while its container runs forgets it, as a dead monitor process did).
        Every fd once: a number closed twice may already be another container's."""
        if self.closed:
            return
        self.closed = True
        host = self.host
        for fd in [fd for fd, owner in host.owner.items() if owner is self]:
            host.unwatch(fd)
        for pid in [pid for pid, (owner, _cb) in host.children.items() if owner is self]:
            del host.children[pid]
        for cl in list(self.clients.values()):
            try:
                cl.sock.close()
            except OSError:
                pass
        self.clients.clear()
        if self.listener is not None:
            path = self.short(self.cfg["sock"])
            try:
                if os.stat(path).st_ino == self.sock_ino:  # not a successor's socket (a restart)
                    os.unlink(path)
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        if self.console is not None and self.console[0] is not None:
            self.console[0].close()
        fds = set(self.out_fds) | {self.stdin_w, self.master, self.create_err} | self.jobs
        for sink in self.sinks.values():
            fds |= {sink.fd, sink.pfd}
        for ex in self.execs.values():
            fds |= set(ex.fds) | {ex.stdin_fd, ex.err}  # (ex.master: in ex.fds while it is open)
            if ex.console[0] is not None:
                ex.console[0].close()
            if ex.master_pending:
                fds.add(ex.master)  # received, exec not going yet
        fds |= {self.log.fd if self.log else None, self.dirfd, self.errlog}
        self.out_fds, self.sinks, self.execs = {}, {}, {}
        self.stdin_w = self.master = None
        for fd in fds:
            if fd is not None and fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass


def _resize(fd, h, w):
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", int(h), int(w), 0, 0))
        return True
    except (OSError, ValueError):
        return False


def main(argv=None):
    """`python -m berth.monitor.monitor RUNDIR STATUS_FD`: a host of this one container (berthd's
    per-container mode, and its fallback when the shared host cannot be reached)."""
    from berth.monitor.host import run_single

    argv = sys.argv[1:] if argv is None else argv
    run_single(argv[0], int(argv[1]))
