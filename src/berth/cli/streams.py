"""Pumping bytes between the terminal and a hijacked attach/exec connection.

One thread, one select loop: container output (demultiplexed unless tty), stdin forwarded raw and
half-closed at EOF, and signals (sig-proxy, SIGWINCH -> resize) delivered through a wakeup pipe so the
HTTP calls they cause never run inside a signal handler.
"""

from __future__ import annotations

# _signal, not signal (its enum wrappers), and classes rather than contextlib: CLI start-up time.
import _signal as signal
import os
import select
from collections.abc import Callable

from berth.client.http import Hijacked
from berth.client.stream import Demuxer

PROXIED_SIGNALS = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGWINCH")


def terminal_size(fd: int = 1) -> tuple[int, int] | None:
    """(height, width) of the terminal on fd, or None."""
    for f in (fd, 0, 2):
        try:
            sz = os.get_terminal_size(f)
            return sz.lines, sz.columns
        except OSError:
            continue
    return None


class raw_terminal:  # noqa: N801 (used like the context-manager function it was)
    """Put the terminal on fd in raw mode (for -t) and always restore it."""

    def __init__(self, enabled: bool, fd: int = 0) -> None:
        self.enabled = enabled
        self.fd = fd
        self.saved = None

    def __enter__(self) -> None:
        if not self.enabled or not os.isatty(self.fd):
            return
        import termios
        import tty

        self.saved = termios.tcgetattr(self.fd)
        tty.setraw(self.fd, termios.TCSANOW)

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


class signal_pipe:  # noqa: N801
    """Catch `names`; entering yields (read fd woken on each signal, list the handlers append to)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.pending: list[int] = []
        self.old: dict[int, object] = {}

    def _handler(self, signum, _frame) -> None:
        self.pending.append(signum)

    def __enter__(self) -> tuple[int, list[int]]:
        self.r, self.w = os.pipe()
        os.set_blocking(self.w, False)
        os.set_blocking(self.r, False)
        for n in self.names:
            sig = getattr(signal, n, None)
            if sig is None:
                continue
            try:
                self.old[sig] = signal.signal(sig, self._handler)
            except (OSError, ValueError):
                pass
        self.prev_fd = signal.set_wakeup_fd(self.w, warn_on_full_buffer=False)
        return self.r, self.pending

    def __exit__(self, *exc) -> None:
        signal.set_wakeup_fd(self.prev_fd)
        for sig, h in self.old.items():
            signal.signal(sig, h)
        os.close(self.r)
        os.close(self.w)


def detach_sequence(keys: str) -> bytes:
    """Docker's --detach-keys syntax ("ctrl-p,ctrl-q", "a,ctrl-@") -> the byte sequence."""
    out = bytearray()
    for k in (keys or "ctrl-p,ctrl-q").split(","):
        k = k.strip()
        if k.startswith("ctrl-") and len(k) == 6:
            c = k[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
                continue
            codes = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if c in codes:
                out.append(codes[c])
                continue
        if len(k) != 1:
            raise ValueError(f"Invalid detach keys ({keys}) provided")
        out.append(ord(k))
    return bytes(out)


class _DetachScanner:
    """Holds back bytes that may start the detach sequence; reports a full match."""

    def __init__(self, seq: bytes) -> None:
        self.seq = seq
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for ch in data:
            cand = self.held + bytes([ch])
            if self.seq.startswith(cand):
                if cand == self.seq:
                    return bytes(out), True
                self.held = cand
            else:
                out += cand
                self.held = b""
        return bytes(out), False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]


def _forward_stdin(conn: Hijacked, stdin_fd: int, scanner: _DetachScanner | None, detached: list[bool],
                   wake_w: int) -> None:
    """Thread: stdin -> connection, raw; half-close at EOF; stop (and wake the loop) on detach keys.

    A thread rather than the select loop, so that a container that does not read its stdin can never
    stop us from draining its output (the daemon applies backpressure on the socket)."""
    try:
        while True:
            try:
                chunk = os.read(stdin_fd, 32768)
            except InterruptedError:
                continue
            except OSError:
                chunk = b""
            if chunk and scanner is not None:
                chunk, hit = scanner.feed(chunk)
                if hit:
                    if chunk:
                        conn.sendall(chunk)
                    detached.append(True)
                    os.write(wake_w, b"d")
                    return
                if not chunk:
                    continue
            if not chunk:
                conn.close_write()
                return
            conn.sendall(chunk)
    except OSError:  # the connection went away: the output side notices on its own
        return


def pump(
    conn: Hijacked,
    *,
    tty: bool,
    stdin: bool,
    on_signal: Callable[[int], None] | None = None,
    stdout_fd: int = 1,
    stderr_fd: int = 2,
    stdin_fd: int = 0,
    half_close_without_stdin: bool = True,
    detach_keys: bytes | None = None,
) -> bool:
    """Copy until the daemon closes the connection (the process ended); True if the user detached
    with the detach keys (only watched for when given, i.e. for a tty on a terminal)."""
    demux = None if tty else Demuxer()
    sock_fd = conn.fileno()
    detached: list[bool] = []
    wake_r, wake_w = os.pipe()
    if not stdin:
        os.close(wake_w)
    # wake_r is watched only while a stdin thread may still write to it: once its write end is
    # closed it is readable for ever, and select would spin.
    watched = [sock_fd, wake_r] if stdin else [sock_fd]
    if stdin:
        import threading

        scanner = _DetachScanner(detach_keys) if detach_keys else None
        threading.Thread(target=_forward_stdin, args=(conn, stdin_fd, scanner, detached, wake_w), daemon=True).start()
    elif half_close_without_stdin:
        conn.close_write()
    names = PROXIED_SIGNALS if on_signal else ()
    try:
        with signal_pipe(names) as (sig_r, pending):
            while True:
                if conn.reader.buf:  # bytes that arrived with the 101 response
                    data = conn.recv()
                else:
                    try:
                        ready, _, _ = select.select([*watched, sig_r], [], [])
                    except InterruptedError:
                        continue
                    if wake_r in ready and not os.read(wake_r, 64):
                        watched.remove(wake_r)
                    if sig_r in ready:
                        try:
                            os.read(sig_r, 512)
                        except BlockingIOError:
                            pass
                        while pending:
                            sig = pending.pop(0)
                            if on_signal:
                                on_signal(sig)
                    if detached:
                        return True
                    if sock_fd not in ready:
                        continue
                    try:
                        data = conn.recv()
                    except ConnectionResetError:
                        data = b""
                if not data:
                    return False
                if demux is None:
                    _write_all(stdout_fd, data)
                else:
                    for stream, payload in demux.feed(data):
                        _write_all(stderr_fd if stream == 2 else stdout_fd, payload)
    finally:
        os.close(wake_r)  # a stdin thread still blocked in read() keeps wake_w; it dies with the process
