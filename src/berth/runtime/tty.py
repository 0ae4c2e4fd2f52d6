"""Terminals: a pty made inside the container, its master handed over a console socket (SCM_RIGHTS,
as runc does) or proxied to the runtime's own stdio for a foreground `run -t` / `exec -t`."""

import fcntl
import os
import struct

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441
TIOCSCTTY = 0x540E
TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414


def open_pty() -> tuple[int, int, str]:
    """-> (master, slave, slave path) from the container's /dev/ptmx (its own devpts instance)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("i", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    try:
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        slave = os.open(f"/dev/pts/{n}", os.O_RDWR | os.O_NOCTTY)
    return master, slave, f"/dev/pts/{n}"


def set_size(fd: int, rows: int, cols: int) -> None:
    if rows and cols:
        fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def copy_size(src: int, dst: int) -> None:
    try:
        fcntl.ioctl(dst, TIOCSWINSZ, fcntl.ioctl(src, TIOCGWINSZ, b"\0" * 8))
    except OSError:
        pass


def make_controlling(slave: int) -> None:
    os.setsid()
    fcntl.ioctl(slave, TIOCSCTTY, 0)
    for i in range(3):
        os.dup2(slave, i)


def send_to_socket(path: str, master: int) -> None:
    """Connect to the caller's console socket and pass the pty master (runc's --console-socket)."""
    import _socket
    import sys

    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(path)
        s.sendmsg([b"/dev/ptmx"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, master.to_bytes(4, sys.byteorder))])
    finally:
        s.close()


def check_socket(path: str) -> None:
    import stat

    from berth.errors import InvalidArgument

    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise InvalidArgument(f"--console-socket {path}: not a unix socket")
    except FileNotFoundError:
        raise InvalidArgument(f"--console-socket {path}: no such file") from None


def proxy(master: int, child_done) -> None:
    """Copy stdin -> master and master -> stdout until the master hangs up; stdin raw if it is a tty."""
    import select
    import termios

    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        raw = termios.tcgetattr(0)
        raw[0] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
        raw[1] &= ~termios.OPOST
        raw[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
        raw[6][termios.VMIN] = 1
        raw[6][termios.VTIME] = 0
        termios.tcsetattr(0, termios.TCSANOW, raw)
        copy_size(0, master)
    p = select.poll()
    p.register(master, select.POLLIN)
    stdin_open = True
    try:
        p.register(0, select.POLLIN)
    except (OSError, ValueError):
        stdin_open = False
    try:
        while True:
            try:
                events = p.poll(200)
            except InterruptedError:
                continue
            if not events and child_done():
                break
            for fd, ev in events:
                if fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: the slave side is closed
                        data = b""
                    if not data:
                        return
                    _write_all(1, data)
                elif stdin_open:
                    data = os.read(0, 65536) if ev & (select.POLLIN | select.POLLHUP) else b""
                    if not data:
                        p.unregister(0)
                        stdin_open = False
                        _write_all(master, b"\x04")  # EOF for the program's line discipline
                    else:
                        _write_all(master, data)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]
