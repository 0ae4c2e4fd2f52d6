"""OCI hooks: run with the container state on stdin, a timeout, and their output kept for the error."""

import _signal as signal  # C module: `signal` imports enum
import os
import select
import time

from berth.errors import BerthError
from berth.runtime import jsonio


class HookError(BerthError):
    pass


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


# Where poststart/poststop failures go (the CLI points it at its --log); stderr by default.
warn = None

# The OCI runtime spec: a failing poststart/poststop hook is logged as a warning and the rest still run;
# any other kind fails the operation at its first failure.
_WARN_ONLY = ("poststart", "poststop")


def run_all(hooks: list[dict], kind: str, state: dict) -> None:
    data = jsonio.dumps(state).encode()
    for i, h in enumerate(hooks or ()):
        if kind not in _WARN_ONLY:
            run_one(h, f"{kind}[{i}]", data)
            continue
        try:
            run_one(h, f"{kind}[{i}]", data)
        except HookError as e:
            if warn is not None:
                warn(str(e))
            else:
                os.write(2, f"berth-runtime: warning: {e}\n".encode())


def run_one(h: dict, name: str, state: bytes) -> None:
    path = h["path"]
    args = h.get("args") or [path]
    # No "env" at all: the hook inherits the runtime's environment (as runc's and crun's hooks do).
    env = os.environ if h.get("env") is None else dict(e.split("=", 1) for e in h["env"])
    timeout = h.get("timeout")
    rin, win = os.pipe()
    rout, wout = os.pipe()
    pidfd = -1
    # A TERM/HUP/INT (KeyboardInterrupt, see container.create) must never leave the hook running: hold
    # them until the hook's pid is known and the cleanup below is armed (the hook gets an empty mask).
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        pid = os.posix_spawn(path, args, env, setsigmask=(), file_actions=[
            (os.POSIX_SPAWN_DUP2, rin, 0), (os.POSIX_SPAWN_DUP2, wout, 1), (os.POSIX_SPAWN_DUP2, wout, 2)])
    except OSError as e:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for fd in (rin, win, rout, wout):
            os.close(fd)
        raise HookError(f"{name} hook {path}: {e.strerror}") from None
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)  # a held signal is handled from here on
        os.close(rin)
        os.close(wout)
        try:
            os.write(win, state)
        except OSError:
            pass  # the hook does not read stdin
        os.close(win)
        pidfd = os.pidfd_open(pid)
        poll = select.poll()
        poll.register(pidfd, select.POLLIN)
        poll.register(rout, select.POLLIN)
        out = bytearray()
        deadline = time.monotonic() + timeout if timeout else None
        exited = False
        while not exited:
            wait = None if deadline is None else max(0, deadline - time.monotonic()) * 1000
            events = poll.poll(wait)
            if not events:
                raise HookError(f"{name} hook {path} timed out after {timeout}s")
            for fd, _ev in events:
                if fd == rout:
                    chunk = os.read(rout, 65536)
                    if chunk:
                        out += chunk[: max(0, 8192 - len(out))]
                    else:
                        poll.unregister(rout)
                else:
                    exited = True
        _, status = os.waitpid(pid, 0)
    except BaseException:
        # Interrupted (or timed out above): never leave the hook running.
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
        raise
    finally:
        if pidfd >= 0:
            os.close(pidfd)
        os.close(rout)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        msg = out.decode(errors="replace").strip()
        raise HookError(f"{name} hook {path} failed with exit code {code}" + (f": {msg}" if msg else ""))
