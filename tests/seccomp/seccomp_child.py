"""Run syscalls in a forked child under a seccomp filter and report their results back."""

from __future__ import annotations

import ctypes
import json
import os

from berth.seccomp import load_bpf

# x86_64 syscall numbers the tests call directly
NR = {
    "getpid": 39,
    "kill": 62,
    "ptrace": 101,
    "personality": 135,
    "pivot_root": 155,
    "chroot": 161,
    "mount": 165,
    "umount2": 166,
    "reboot": 169,
    "init_module": 175,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "unshare": 272,
    "perf_event_open": 298,
    "open_by_handle_at": 304,
    "setns": 308,
    "bpf": 321,
    "userfaultfd": 323,
    "clone3": 435,
    "nr600": 600,  # not a syscall (yet)
}
X32 = 0x40000000  # x32 ABI calls are x86_64 calls with this bit set
NR.update({"x32_" + name: X32 | nr for name, nr in list(NR.items())})

PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int


IA32_NR = {"ia32_getpid": 20, "ia32_unshare": 310, "ia32_mount": 21}
_ia32 = None


def raw_syscall(name: str, *args: int) -> int:
    """0 (or the result) on success, -errno on failure; ia32_* names go through int 0x80."""
    if name.startswith("ia32_"):
        return _ia32(IA32_NR[name], *(args or (0,)))
    ctypes.set_errno(0)
    rc = _libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_long(a) for a in args])
    return -ctypes.get_errno() if rc == -1 else rc


def in_child(bpf: bytes | None, calls: list[tuple], flags: list[str] | None = None, nnp: bool = True) -> dict:
    """Fork; the child sets no_new_privs, loads bpf, makes each (name, *args) syscall and reports
    {"name": result} (or {"error": "..."} if loading failed) through a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no pytest machinery from here on, always _exit
        code = 0
        try:
            os.close(r)
            out: dict = {}
            try:
                if nnp and _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                    raise OSError(ctypes.get_errno(), "prctl")
                if bpf is not None:
                    load_bpf(bpf, flags or [])
                for call in calls:
                    out[call[0]] = raw_syscall(*call)
                with open("/proc/self/status") as f:
                    out["status"] = {
                        k: v.strip()
                        for k, _, v in (line.partition(":") for line in f)
                        if k.startswith("Seccomp")
                    }
            except BaseException as e:  # report, never raise into pytest's copy of the stack
                out["error"] = f"{type(e).__name__}: {e}"
            os.write(w, json.dumps(out).encode())
        except BaseException:
            code = 1
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"child failed: status {status}, output {data!r}"
    return json.loads(data)


def ia32_syscall_fn():
    """A function (nr, arg) -> result that makes a 32-bit syscall with int 0x80, or None if W^X forbids it.

    Seccomp sees these calls as AUDIT_ARCH_I386: a filter that forgot the x86 arch would not cover them.
    """
    import mmap

    code = bytes.fromhex(
        "53"  # push rbx
        "89f8"  # mov eax, edi   (nr)
        "89f3"  # mov ebx, esi   (arg0)
        "cd80"  # int 0x80
        "5b"  # pop rbx
        "c3"  # ret
    )
    try:
        mem = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except OSError:
        return None
    mem.write(code)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    fn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int)(addr)
    fn._keep = mem  # the mapping must outlive the function
    return fn
