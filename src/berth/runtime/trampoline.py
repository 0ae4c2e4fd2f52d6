"""execve through a sealed memfd holding a 150-byte static ELF that execs its first argument.

Why (CVE-2019-5736): if the container's program is a script whose interpreter is /proc/self/exe, the
kernel would start *our* executable (the host's python) inside the container, which could then reopen
it for writing. Execing from a sealed, anonymous memfd first makes /proc/self/exe that memfd instead.
"""

import fcntl
import os
import struct

# x86_64: execve(argv[0], argv + 1, envp) if argc >= 2, else (or if execve fails) exit(127).
# The argc check ends the loop a "#!/proc/self/exe" script would otherwise start: each round through
# the script loader drops one argument, and an empty argv would come back as [""] forever.
_CODE = bytes.fromhex(
    "488b0424"        # mov rax, [rsp]            argc
    "4883f802"        # cmp rax, 2
    "7216"            # jb fail
    "488b7c2408"      # mov rdi, [rsp+8]          argv[0]: the program's path
    "488d742410"      # lea rsi, [rsp+16]         argv + 1: the program's argv
    "488d54c410"      # lea rdx, [rsp+rax*8+16]   envp
    "b83b000000"      # mov eax, 59 (execve)
    "0f05"            # syscall
    "bf7f000000"      # fail: mov edi, 127
    "b83c000000"      # mov eax, 60 (exit)
    "0f05"            # syscall
)
_BASE = 0x400000
_HDRS = 64 + 2 * 56


def _elf() -> bytes:
    size = _HDRS + len(_CODE)
    eh = b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + struct.pack(
        "<HHIQQQIHHHHHH", 2, 0x3E, 1, _BASE + _HDRS, 64, 0, 0, 64, 56, 2, 0, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 5, 0, _BASE, _BASE, size, size, 0x1000)
    stack = struct.pack("<IIQQQQQQ", 0x6474E551, 6, 0, 0, 0, 0, 0, 16)
    return eh + load + stack + _CODE


def available() -> bool:
    return os.uname().machine == "x86_64"


def memfd(lowest: int = 3) -> int:
    """A sealed, close-on-exec memfd holding the trampoline, numbered lowest or above.

    The runtime makes it before it forks (the sealed file is immutable, so the container's process may
    share it): writing it in the child, the first page charged to the container's new memory cgroup,
    cost 1-3 ms there."""
    try:
        fd = os.memfd_create("berth-exec", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING | 0x10)  # MFD_EXEC
    except OSError:
        fd = os.memfd_create("berth-exec", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.write(fd, _elf())
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
                | fcntl.F_SEAL_WRITE)
    if fd < lowest:  # keep it out of the fds the container inherits (3 .. 3 + preserve_fds - 1)
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
        os.close(fd)
        fd = high
    return fd


def execve(tramp_fd: int | None, path: str, args: list[str], env: dict[str, str]) -> None:
    if tramp_fd is not None:
        try:
            os.execve(tramp_fd, [path] + args, env)
        except OSError:
            pass  # e.g. execveat denied by a seccomp profile: exec directly
    os.execve(path, args, env)
