"""berth: the command line. argparse with lazily-built subcommands so `berth --help` stays fast.

Only the chosen command's flags are defined and only its module is imported; rich is imported by
nothing here (tables are written with a tabwriter, as Docker does).
"""

from __future__ import annotations

import sys


def _ngettext(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


# berth ships no message catalogues: argparse gets identity translations instead of gettext, whose
# import and per-message catalogue search (over a hundred per command, stat()ing locale directories
# when LANG is set) cost the CLI milliseconds of start-up. Only argparse's own import sees the stand-in.
if "argparse" not in sys.modules and "gettext" not in sys.modules:
    _stub = type(sys)("gettext")
    _stub.gettext = str  # type: ignore[attr-defined]
    _stub.ngettext = _ngettext  # type: ignore[attr-defined]
    sys.modules["gettext"] = _stub
    try:
        import argparse
    finally:
        del sys.modules["gettext"]
import argparse  # noqa: E402

argparse._ = str  # type: ignore[attr-defined]
argparse.ngettext = _ngettext  # type: ignore[attr-defined]

# name -> (help, module, base) ; the module defines add_<base>(parser) and cmd_<base>(client, args)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("Create and run a new container from an image", "run", "run"),
    "exec": ("Execute a command in a running container", "run", "exec"),
    "ps": ("List containers", "containers", "ps"),
    "images": ("List images", "images", "images"),
    "create": ("Create a new container", "run", "create"),
    "start": ("Start one or more stopped containers", "run", "start"),
    "stop": ("Stop one or more running containers", "containers", "stop"),
    "kill": ("Kill one or more running containers", "containers", "kill"),
    "restart": ("Restart one or more containers", "containers", "restart"),
    "pause": ("Pause all processes within one or more containers", "containers", "pause"),
    "unpause": ("Unpause all processes within one or more containers", "containers", "unpause"),
    "rm": ("Remove one or more containers", "containers", "rm"),
    "rename": ("Rename a container", "containers", "rename"),
    "wait": ("Block until one or more containers stop, then print their exit codes", "run", "wait"),
    "logs": ("Fetch the logs of a container", "containers", "logs"),
    "attach": ("Attach local standard input, output, and error streams to a running container", "run", "attach"),
    "inspect": ("Return low-level information on berth objects", "containers", "inspect"),
    "top": ("Display the running processes of a container", "containers", "top"),
    "stats": ("Display a live stream of container(s) resource usage statistics", "containers", "stats"),
    "port": ("List port mappings or a specific mapping for the container", "containers", "port"),
    "cp": ("Copy files/folders between a container and the local filesystem", "cp", "cp"),
    "diff": ("Inspect changes to files or directories on a container's filesystem", "containers", "diff"),
    "commit": ("Create a new image from a container's changes", "containers", "commit"),
    "export": ("Export a container's filesystem as a tar archive", "containers", "export"),
    "update": ("Update configuration of one or more containers", "containers", "update"),
    "rmi": ("Remove one or more images", "images", "rmi"),
    "tag": ("Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", "images", "tag"),
    "history": ("Show the history of an image", "images", "history"),
    "save": ("Save one or more images to a tar archive (streamed to STDOUT by default)", "images", "save"),
    "load": ("Load an image from a tar archive or STDIN", "images", "load"),
    "import": ("Import the contents from a tarball to create a filesystem image", "images", "import"),
    "pull": ("Download an image from a registry", "images", "pull"),
    "info": ("Display system-wide information", "system", "info"),
    "version": ("Show the berth version information", "system", "version"),
    "events": ("Get real time events from the server", "system", "events"),
    "audit": ("Show the daemon's audit log (who did what, with uid and pid)", "system", "audit"),
    "daemon": ("Run the berth daemon (berthd)", "system", "daemon"),
}

GROUPS: dict[str, tuple[str, dict[str, tuple[str, str, str]]]] = {
    "container": ("Manage containers", {
        **{k: COMMANDS[k] for k in ("run", "exec", "create", "start", "stop", "kill", "restart", "pause", "unpause",
                                    "rename", "wait", "logs", "attach", "top", "stats", "port", "cp", "diff",
                                    "commit", "export", "update")},
        "ls": ("List containers", "containers", "ps"),
        "rm": COMMANDS["rm"],
        "inspect": ("Display detailed information on one or more containers", "containers", "container_inspect"),
        "prune": ("Remove all stopped containers", "containers", "container_prune"),
    }),
    "image": ("Manage images", {
        "ls": ("List images", "images", "images"),
        "rm": COMMANDS["rmi"],
        "tag": COMMANDS["tag"],
        "history": COMMANDS["history"],
        "save": COMMANDS["save"],
        "load": COMMANDS["load"],
        "import": COMMANDS["import"],
        "pull": COMMANDS["pull"],
        "inspect": ("Display detailed information on one or more images", "images", "image_inspect"),
        "prune": ("Remove unused images", "images", "image_prune"),
        "bootstrap": ("Make a busybox image from Debian's busybox-static (no registry needed)", "images", "bootstrap"),
    }),
    "volume": ("Manage volumes", {
        "create": ("Create a volume", "volumes", "create"),
        "ls": ("List volumes", "volumes", "ls"),
        "inspect": ("Display detailed information on one or more volumes", "volumes", "inspect"),
        "rm": ("Remove one or more volumes", "volumes", "rm"),
        "prune": ("Remove unused local volumes", "volumes", "prune"),
    }),
    "system": ("Manage berth", {
        "df": ("Show berth disk usage", "system", "df"),
        "info": COMMANDS["info"],
        "events": COMMANDS["events"],
    }),
}

ALIASES = {"container": {"list": "ls", "remove": "rm"}, "image": {"list": "ls", "remove": "rm"},
           "volume": {"list": "ls", "remove": "rm"}}

FLAG_ERROR = 125

_width: int | None = None


def _help_width() -> int:
    """What argparse's HelpFormatter computes on every instantiation (shutil.get_terminal_size - 2),
    once per process: argparse makes a formatter for each add_argument, only to validate it."""
    global _width
    if _width is None:
        import os

        try:
            cols = int(os.environ.get("COLUMNS", "0"))
        except ValueError:
            cols = 0
        if cols <= 0:
            try:
                cols = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
            except (AttributeError, ValueError, OSError):
                cols = 0
        _width = (cols or 80) - 2
    return _width


class Parser(argparse.ArgumentParser):
    """Docker-style flag errors: message, a hint, exit 125."""

    def _get_formatter(self):
        return self.formatter_class(prog=self.prog, width=_help_width())

    def error(self, message: str):  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: {message}\nSee '{self.prog} --help'.\n")
        sys.exit(FLAG_ERROR)


def _first_positionals(argv: list[str]) -> list[str]:
    """The command (and subcommand) words, skipping global flags and their values."""
    out: list[str] = []
    i = 0
    while i < len(argv) and len(out) < 2:
        a = argv[i]
        if a in ("-H", "--host", "-l", "--log-level", "--config", "--context", "-c"):
            i += 2
            continue
        if a.startswith("-"):
            if out:  # flags of the command itself: stop looking for a subcommand
                break
            i += 1
            continue
        out.append(a)
        i += 1
    return out


def _populate(sp: argparse.ArgumentParser, entry: tuple[str, str, str]) -> None:
    import importlib

    _, module, base = entry
    mod = importlib.import_module(f"berth.cli.{module}")
    getattr(mod, f"add_{base}")(sp)
    sp.set_defaults(_entry=entry)


def _needs_own_help(base: str) -> bool:
    return base in ("run", "create")  # -h is --hostname there


def build_parser(argv: list[str]) -> Parser:
    words = _first_positionals(argv)
    p = Parser(prog="berth", description="A self-sufficient runtime for containers",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-H", "--host", default=None, help="Daemon socket to connect to (unix://PATH)")
    p.add_argument("-D", "--debug", action="store_true", help="Enable debug mode")
    p.add_argument("-l", "--log-level", default="info", help=argparse.SUPPRESS)
    p.add_argument("-v", "--version", action="store_true", help="Print version information and quit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    want = words[0] if words else None
    # A known command word: only its parser is built (each parser costs argparse work); without one,
    # all of them, for the help listing.
    only = want in GROUPS or want in COMMANDS
    for name, (help_, grp) in GROUPS.items():
        if only and name != want:
            continue
        gp = sub.add_parser(name, help=help_, description=help_)
        if name == want:
            gsub = gp.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=Parser)
            wsub = words[1] if len(words) > 1 else None
            wsub = ALIASES.get(name, {}).get(wsub, wsub)  # type: ignore[arg-type]
            for sname, entry in grp.items():
                if wsub in grp and sname != wsub:
                    continue
                sp = gsub.add_parser(sname, help=entry[0], description=entry[0],
                                     aliases=[a for a, t in ALIASES.get(name, {}).items() if t == sname],
                                     add_help=not _needs_own_help(entry[2]))
                if sname == wsub:
                    _populate(sp, entry)
            gp.set_defaults(_group=gp)
    for name, entry in COMMANDS.items():
        if only and name != want:
            continue
        sp = sub.add_parser(name, help=entry[0], description=entry[0], add_help=not _needs_own_help(entry[2]))
        if name == want:
            _populate(sp, entry)
    return p


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] != ["daemon"]:
        # the berth process itself: leave without the interpreter's teardown (milliseconds); the CLI
        # registers no atexit work and its streams are flushed here
        code = _main(sys.argv[1:])
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            code = code or 1
        except OSError:
            pass
        try:
            sys.stderr.flush()
        except OSError:
            pass
        import os

        os._exit(code if isinstance(code, int) else 1)
    return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    if argv[:1] == ["daemon"]:  # everything after `daemon` belongs to berthd
        from berth.daemon.main import main as daemon_main

        return daemon_main(argv[1:]) or 0
    words = _first_positionals(argv)
    if words and words[0] not in COMMANDS and words[0] not in GROUPS:
        sys.stderr.write(f"berth: '{words[0]}' is not a berth command.\nSee 'berth --help'\n")
        return 1
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.version and not args.command:
        import berth

        print(f"berth version {getattr(berth, '__version__', '0.1.0')}")
        return 0
    entry = getattr(args, "_entry", None)
    if entry is None:
        group = getattr(args, "_group", None)
        (group or parser).print_help()
        return 0
    import importlib

    from berth.cli.errors import CLIError, TemplateError, TemplateParseError
    from berth.client import APIError, Client, ClientError, StreamError

    mod = importlib.import_module(f"berth.cli.{entry[1]}")
    fn = getattr(mod, f"cmd_{entry[2]}")
    client = Client(args.host)
    fail = FLAG_ERROR if entry[1:] in (("run", "run"), ("run", "create")) else 1
    try:
        code = int(fn(client, args) or 0)
        sys.stdout.flush()
        return code
    except CLIError as e:
        if str(e):
            sys.stderr.write(str(e).rstrip("\n") + "\n")
        return e.code
    except APIError as e:
        sys.stderr.write(f"{e}\n")
        return fail
    except TemplateError as e:
        if isinstance(e, TemplateParseError):
            sys.stderr.write(f"template parsing error: {e}\n")
            return 64
        sys.stderr.write(f"failed to execute template: template: {e}\n")
        return 1
    except StreamError as e:
        sys.stderr.write(f"{e.message}\n")
        return e.code or 1
    except ClientError as e:
        sys.stderr.write(f"{e}\n")
        return fail
    except BrokenPipeError:  # the reader went away (`berth events | head`): quiet exit
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ConnectionError, TimeoutError) as e:
        sys.stderr.write(f"error during connect: {e}\n")
        return fail
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()
