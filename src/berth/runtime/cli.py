"""berth-runtime: runc's command line over berth.runtime. Standard library only (it is the start path).

The parser is hand-written: argparse costs ~10 ms of imports per container start. Like runc (urfave/cli),
long flags take one or two dashes, `--flag=value` or `--flag value`, and flag parsing for a command
stops at its first positional argument.
"""

import gc
import os
import sys

from berth import __version__
from berth.errors import BerthError, InvalidArgument, NotFound

USAGE = """berth-runtime: an OCI runtime with runc's command line

usage: berth-runtime [global options] command [command options] [arguments...]

commands:
  create     create a container (it waits for start)      start    run a created container's program
  run        create and start a container                  state    output a container's state (JSON)
  kill       send a signal to a container's init (or all)  delete   delete a container and its resources
  list       list containers                               exec     run a new process in a container
  ps         processes running in a container              pause    freeze all processes of a container
  resume     thaw a paused container                       events   stats and OOM events of a container
  update     change a container's resources                spec     write a default config.json
  features   what this runtime supports (JSON)

global options:
  --root DIR            state directory (default /run/berth/runtime)
  --log FILE            log file (default: stderr)
  --log-format FORMAT   text or json
  --debug               debug logging
  --systemd-cgroup      use the systemd cgroup driver (not supported: reported as an error)
  --cgroup-manager M    cgroupfs, or systemd (crun's flag; systemd = --systemd-cgroup)
  --version, -v         print the version
"""

# kind: b = bool, s = string, i = int, l = repeatable string
_GLOBAL = {"root": "s", "log": "s", "log-format": "s", "debug": "b", "systemd-cgroup": "b", "criu": "s",
           "cgroup-manager": "s",
           "rootless": "s", "help": "b", "h": "b", "version": "b", "v": "b"}
_CREATE = {"bundle": "s", "b": "bundle", "console-socket": "s", "pid-file": "s", "no-pivot": "b",
           "no-new-keyring": "b", "preserve-fds": "i", "help": "b", "h": "help",
           "config": "s", "f": "config"}
_COMMANDS = {
    "create": _CREATE,
    "run": dict(_CREATE, detach="b", d="detach", keep="b", **{"no-subreaper": "b"}),
    "start": {},
    "state": {},
    "kill": {"all": "b", "a": "all"},
    "delete": {"force": "b", "f": "force"},
    "list": {"format": "s", "f": "format", "quiet": "b", "q": "quiet"},
    "ps": {"format": "s", "f": "format"},
    "pause": {},
    "resume": {},
    "events": {"interval": "s", "stats": "b"},
    "exec": {"console-socket": "s", "cwd": "s", "env": "l", "e": "env", "tty": "b", "t": "tty", "user": "s",
             "u": "user", "additional-gids": "l", "g": "additional-gids", "process": "s", "p": "process",
             "detach": "b", "d": "detach", "pid-file": "s", "process-label": "s", "apparmor": "s",
             "no-new-privs": "b", "cap": "l", "c": "cap", "preserve-fds": "i", "ignore-paused": "b",
             "cgroup": "l"},
    "update": {"resources": "s", "r": "resources", "blkio-weight": "s", "cpu-period": "s", "cpu-quota": "s",
               "cpu-share": "s", "cpu-rt-period": "s", "cpu-rt-runtime": "s", "cpuset-cpus": "s",
               "cpuset-mems": "s", "kernel-memory": "s", "kernel-memory-tcp": "s", "memory": "s",
               "memory-reservation": "s", "memory-swap": "s", "pids-limit": "s", "l3-cache-schema": "s",
               "mem-bw-schema": "s"},
    "spec": {"bundle": "s", "b": "bundle", "rootless": "b"},
    "features": {},
    "checkpoint": {}, "restore": {},
}


class UsageError(InvalidArgument):
    pass


def _parse_flags(args: list[str], table: dict, where: str) -> tuple[dict, list[str]]:
    out: dict = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return out, args[i + 1:]
        if not a.startswith("-") or a == "-":
            return out, args[i:]
        name, eq, val = a.lstrip("-").partition("=")
        kind = table.get(name)
        if kind is None:
            raise UsageError(f"{where}: unknown flag {a!r}")
        if len(kind) > 1:  # an alias
            name, kind = kind, table[kind]
        if kind == "b":
            out[name] = val.lower() not in ("false", "0") if eq else True
        else:
            if not eq:
                i += 1
                if i >= len(args):
                    raise UsageError(f"{where}: flag {a} needs a value")
                val = args[i]
            if kind == "i":
                try:
                    out[name] = int(val)
                except ValueError:
                    raise UsageError(f"{where}: flag {a} needs an integer, not {val!r}") from None
            elif kind == "l":
                out.setdefault(name, []).append(val)
            else:
                out[name] = val
        i += 1
    return out, []


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        # Run as the program (the launcher's sys.exit(main())): once the work is done, skip the
        # interpreter's teardown (module dicts, GC of the import graph: ~2-4 ms a start). Called with
        # argv (the monitor's warm process, tests), return normally.
        code = main(sys.argv[1:])
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:
                return code  # let the interpreter report it as usual
        os._exit(0 if code is None else code & 0xFF if isinstance(code, int) else 1)
    # A short-lived process: the cyclic GC would only walk the import graph a few times for nothing.
    gc.disable()
    if "run" in argv or "create" in argv or "exec" in argv:
        from berth.runtime import warm

        warm.start()
    from berth.runtime.log import Log

    log = Log()
    try:
        g, rest = _parse_flags(argv, _GLOBAL, "berth-runtime")
        log = Log(g.get("log"), g.get("log-format", "text"), g.get("debug", False))
        if g.get("log-format", "text") not in ("text", "json"):
            raise UsageError(f"--log-format {g['log-format']!r}: use text or json")
        if g.get("cgroup-manager", "cgroupfs") not in ("cgroupfs", "systemd"):
            raise UsageError(f"--cgroup-manager {g['cgroup-manager']!r}: use cgroupfs or systemd")
        if g.get("version") or g.get("v"):
            from berth.runtime.spec import OCI_VERSION

            print(f"berth-runtime version {__version__}\nspec: {OCI_VERSION}")
            return 0
        if not rest or g.get("help") or g.get("h"):
            sys.stdout.write(USAGE)
            return 0 if (g.get("help") or g.get("h")) else 1
        cmd, rest = rest[0], rest[1:]
        if cmd == "help":
            sys.stdout.write(USAGE)
            return 0
        if cmd not in _COMMANDS:
            raise UsageError(f"unknown command {cmd!r} (see berth-runtime --help)")
        flags, pos = _parse_flags(rest, _COMMANDS[cmd], cmd)
        if flags.get("help"):
            sys.stdout.write(USAGE)
            return 0
        from berth.runtime import commands

        return getattr(commands, "cmd_" + cmd)(g, flags, pos, log)
    except KeyboardInterrupt:
        return 130
    except (BerthError, OSError, ValueError) as e:
        msg = _message(e)
        log.error(msg)
        sys.stderr.write(f"berth-runtime: {msg}\n")
        return 1


def _message(e: BaseException) -> str:
    if isinstance(e, NotFound):
        return str(e)
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {e.strerror}"
    if isinstance(e, OSError) and len(e.args) == 2 and isinstance(e.args[1], str):
        return e.args[1]
    return str(e) or type(e).__name__
