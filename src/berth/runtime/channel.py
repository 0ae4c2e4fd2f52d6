"""Typed messages between the runtime and the container's init over a SOCK_SEQPACKET socketpair.

One datagram = one JSON object {"type": ..., ...}; an fd can ride along (SCM_RIGHTS) for the console.
(No `array` module: importing it pulls in collections.abc.)
Errors travel as {"type": "error", "msg": ...}; EOF means the peer exited (or execve'd: CLOEXEC).

create/run, runtime -> init: "joined" (init is in its cgroup; carries the OCI state for hooks), "limited"
(the cgroup limits are written: init waits for it before mknod and exec), "hooks_done"; init -> runtime:
"hooks", "console" (+ the pty master), "ready". `create` then waits on exec.fifo for `start`; under `run`
init goes on to its program right after "ready". exec: "console", "joined".
"""

import _socket
import sys

from berth.runtime import jsonio

_MAX = 65536


class ChannelError(Exception):
    pass


class Channel:
    def __init__(self, sock: "_socket.socket"):
        self.sock = sock

    @staticmethod
    def pair() -> "tuple[Channel, Channel]":
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        return Channel(a), Channel(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, typ: str, fd: int | None = None, **kw) -> None:
        kw["type"] = typ
        data = jsonio.dumps(kw).encode()
        if fd is None:
            self.sock.send(data)
        else:
            self.sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fd.to_bytes(4, sys.byteorder))])

    def recv(self, with_fd: bool = False) -> "tuple[dict | None, int | None]":
        """Next message (None at EOF) and the fd it carried, if any."""
        try:
            return self._recv(with_fd)
        except ConnectionResetError:
            # The peer exited with a message of ours unread: the kernel reports that once, ahead of
            # what the peer sent before it exited (its error message). Read on.
            return self._recv(with_fd)

    def _recv(self, with_fd: bool) -> "tuple[dict | None, int | None]":
        if with_fd:
            data, anc, _flags, _addr = self.sock.recvmsg(_MAX, _socket.CMSG_SPACE(4))
            fd = None
            for level, typ, cdata in anc:
                if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
                    fd = int.from_bytes(cdata[:4], sys.byteorder)
        else:
            data = self.sock.recv(_MAX)
            fd = None
        if not data:
            return None, fd
        return jsonio.loads(data), fd

    def expect(self, typ: str) -> dict:
        msg, _ = self.recv()
        if msg is None:
            raise ChannelError(f"container init exited while waiting for {typ!r}")
        if msg["type"] == "error":
            raise ChannelError(msg["msg"])
        if msg["type"] != typ:
            raise ChannelError(f"unexpected message {msg['type']!r} while waiting for {typ!r}")
        return msg

    def close(self) -> None:
        self.sock.close()
