"""The few ctypes pieces berth's libc calls need, built on the _ctypes core without the ctypes package.

`import ctypes` costs ~2.5 ms of CPU per process (its package defines dozens of types and helpers at
import); the C core it wraps loads in ~0.3 ms. The objects below are the same C types ctypes builds
(_SimpleCData with the same type codes, CFuncPtr, Structure), so calls behave exactly as through ctypes.
"""

import _ctypes
from _ctypes import Structure, byref, get_errno, sizeof  # noqa: F401 - re-exported

__all__ = ["Structure", "byref", "get_errno", "sizeof", "c_int", "c_uint", "c_long", "c_ulong", "c_uint32",
           "c_uint64", "c_ushort", "c_char_p", "c_void_p", "Lib"]


class c_int(_ctypes._SimpleCData):  # noqa: N801 - ctypes' names
    _type_ = "i"


class c_uint(_ctypes._SimpleCData):  # noqa: N801
    _type_ = "I"


class c_long(_ctypes._SimpleCData):  # noqa: N801
    _type_ = "l"


class c_ulong(_ctypes._SimpleCData):  # noqa: N801
    _type_ = "L"


class c_ushort(_ctypes._SimpleCData):  # noqa: N801
    _type_ = "H"


class c_char_p(_ctypes._SimpleCData):  # noqa: N801
    _type_ = "z"


class c_void_p(_ctypes._SimpleCData):  # noqa: N801
    _type_ = "P"


c_uint32 = c_uint
c_uint64 = c_ulong  # LP64 (x86_64, aarch64): unsigned long is 64 bits


class _Func(_ctypes.CFuncPtr):
    """A C function: cdecl, int result unless restype is set; errno saved for get_errno() (use_errno)."""
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class Lib:
    """Functions of the process's own symbols (libc), like ctypes.CDLL(None, use_errno=True)."""

    def __init__(self) -> None:
        self._handle = _ctypes.dlopen(None, _ctypes.RTLD_LOCAL)

    def __getattr__(self, name: str) -> _Func:
        if name.startswith("_"):
            raise AttributeError(name)
        f = _Func((name, self))
        setattr(self, name, f)
        return f
