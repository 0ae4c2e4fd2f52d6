"""Typed messages between the runtime and the container's init over a SOCK_SEQPACKET socketpair.

One datagram = one JSON object {"type": ..., ...}; an fd can ride along (SCM_RIGHTS) for the console.
(No `array` module: importing it pulls in collections.abc.)
Errors travel as {"type": "error", "msg": ...}; EOF means the peer exited (or execve'd: CLOEXEC).

create/run, runtime -> init: "joined" (init may join its cgroup: the v2 part is done by pid, the v1
`tasks` files ride along for init to write itself into; carries the OCI state for hooks), "limited" (the
cgroup limits are written; carries the seccomp program: init waits for it before mknod and exec),
"hooks_done"; init -> runtime:
"hooks", "console" (+ the pty master), "ready". `create` then waits on exec.fifo for `start`; under `run`
init goes on to its program right after "ready". exec: "console", "joined".
"""

import _socket
import os
import sys

from berth.runtime import jsonio

_MAX = 65536
_MAX_FDS = 16  # the cgroup v1 hierarchies' `tasks` files ride along with "joined"


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

    def send(self, typ: str, fd: int | None = None, fds: "list[int] | None" = None, **kw) -> None:
        kw["type"] = typ
        data = jsonio.dumps(kw).encode()
        fds = ([fd] if fd is not None else []) + (fds or [])
        if not fds:
            self.sock.send(data)
        else:
            raw = b"".join(f.to_bytes(4, sys.byteorder) for f in fds)
            self.sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, raw)])

    def recv(self, with_fd: bool = False) -> "tuple[dict | None, int | None]":
        """Next message (None at EOF) and the (first) fd it carried, if any."""
        msg, fds = self.recv_fds(_MAX_FDS if with_fd else 0)
        for extra in fds[1:]:
            os.close(extra)
        return msg, fds[0] if fds else None

    def recv_fds(self, max_fds: int = _MAX_FDS) -> "tuple[dict | None, list[int]]":
        """Next message (None at EOF) and every fd it carried."""
        try:
            return self._recv(max_fds)
        except ConnectionResetError:
            # The peer exited with a message of ours unread: the kernel reports that once, ahead of
            # what the peer sent before it exited (its error message). Read on.
            return self._recv(max_fds)

    def _recv(self, max_fds: int) -> "tuple[dict | None, list[int]]":
        fds: list[int] = []
        if max_fds:
            data, anc, _flags, _addr = self.sock.recvmsg(_MAX, _socket.CMSG_SPACE(4 * max_fds))
            for level, typ, cdata in anc:
                if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
                    fds += [int.from_bytes(cdata[i:i + 4], sys.byteorder) for i in range(0, len(cdata) - 3, 4)]
        else:
            data = self.sock.recv(_MAX)
        if not data:
            return None, fds
        return jsonio.loads(data), fds

    def expect_fds(self, typ: str) -> "tuple[dict, list[int]]":
        msg, fds = self.recv_fds()
        try:
            return self._check(msg, typ), fds
        except ChannelError:
            for fd in fds:
                os.close(fd)
            raise

    def expect(self, typ: str) -> dict:
        return self._check(self.recv()[0], typ)

    @staticmethod
    def _check(msg: "dict | None", typ: str) -> dict:
        if msg is None:
            raise ChannelError(f"container init exited while waiting for {typ!r}")
        if msg["type"] == "error":
            raise ChannelError(msg["msg"])
        if msg["type"] != typ:
            raise ChannelError(f"unexpected message {msg['type']!r} while waiting for {typ!r}")
        return msg

    def close(self) -> None:
        self.sock.close()
