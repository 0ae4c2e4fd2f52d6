"""run, create, start, attach, exec, wait: the commands that create processes or stream their stdio."""

from __future__ import annotations

import argparse
import os
import sys

from berth.cli.errors import CLIError, start_failure_code
from berth.cli.options import UsageError, add_container_flags, build_create_body, normalize_image
from berth.client import APIError, Client, ClientError, StreamError


def _err(msg: str) -> None:
    sys.stderr.write(msg.rstrip("\n") + "\n")
    sys.stderr.flush()


def _run_error(cmd: str, e: Exception, code: int = 125) -> CLIError:
    return CLIError(f"berth: {e}\n\nRun 'berth {cmd} --help' for more information", code)


# ------------------------------------------------------------------------------ create


def add_create(p: argparse.ArgumentParser) -> None:
    add_container_flags(p)


def add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--detach", action="store_true", help="Run container in background and print container ID")
    p.add_argument("--sig-proxy", default="true", choices=["true", "false"], help="Proxy received signals to the process")
    add_container_flags(p)


def split_ref(ref: str) -> tuple[str, str]:
    """`repo[:tag]` -> (repo, tag) with the tag defaulting to latest; digests stay in the repo."""
    if "@" in ref:
        repo, _, digest = ref.partition("@")
        return repo, digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, "latest"


def pull_image(client: Client, ref: str, quiet: bool = False, out=None) -> None:
    """`POST /images/create?fromImage=...` and print its progress the way the CLI does (plain lines)."""
    out = out or sys.stderr
    repo, tag = split_ref(ref)
    for msg in client.stream_json(
        "POST", "/images/create", {"fromImage": repo, "tag": tag}, headers={"X-Registry-Auth": "e30="}
    ):
        if not isinstance(msg, dict):
            continue
        if msg.get("error") or msg.get("errorDetail"):
            detail = msg.get("errorDetail") or {}
            raise StreamError(detail.get("message") or msg.get("error", ""), detail.get("code"))
        if quiet:
            continue
        status = msg.get("status", "")
        if msg.get("id"):
            out.write(f"{msg['id']}: {status} {msg.get('progress', '')}".rstrip() + "\n")
        elif status:
            out.write(status + "\n")
    out.flush()


def create_container(client: Client, o: argparse.Namespace, cmd: str) -> str:
    """Create (pulling on "No such image" as the CLI does); print warnings; return the id."""
    console = None
    if o.tty:
        from berth.cli.streams import terminal_size

        console = terminal_size()
    try:
        body = build_create_body(o, console)
    except UsageError as e:
        raise _run_error(cmd, e)
    params = {"name": o.name or None}
    if o.platform:
        params["platform"] = o.platform
    try:
        if o.pull == "always":
            pull_image(client, o.image, o.quiet)
        try:
            res = client.post_json("/containers/create", body, params)
        except APIError as e:
            if e.status != 404 or "no such image" not in e.message.lower() or o.pull == "never":
                raise
            _err(f"Unable to find image '{normalize_image(o.image)}' locally")
            pull_image(client, o.image, o.quiet)
            res = client.post_json("/containers/create", body, params)
    except (APIError, StreamError) as e:
        raise _run_error(cmd, e if isinstance(e, APIError) else f"Error response from daemon: {e}")
    for w in res.get("Warnings") or []:
        _err(f"WARNING: {w}")
    if o.cidfile:
        with open(o.cidfile, "x") as f:
            f.write(res["Id"])
    return res["Id"]


def cmd_create(client: Client, o: argparse.Namespace) -> int:
    print(create_container(client, o, "create"))
    return 0


# ------------------------------------------------------------------------------ run


def _signal_forwarder(client: Client, cid: str, tty: bool, proxy: bool, exec_id: str | None = None):
    def on_signal(sig: int) -> None:
        import signal

        try:
            if sig == signal.SIGWINCH and tty:
                resize(client, cid, exec_id)
                if exec_id:  # exec sessions only resize
                    return
            if proxy and not exec_id:
                name = signal.Signals(sig).name[3:]
                client.request("POST", f"/containers/{cid}/kill", {"signal": name}).read()
        except ClientError:
            pass

    return on_signal


def resize(client: Client, cid: str, exec_id: str | None = None) -> None:
    from berth.cli.streams import terminal_size

    size = terminal_size()
    if not size:
        return
    path = f"/exec/{exec_id}/resize" if exec_id else f"/containers/{cid}/resize"
    try:
        client.request("POST", path, {"h": size[0], "w": size[1]}).read()
    except APIError:
        pass


def _attach(client: Client, cid: str, stdin: bool, stdout: bool, stderr: bool):
    params = {"stderr": stderr, "stdin": stdin, "stdout": stdout, "stream": True}
    return client.hijack(f"/containers/{cid}/attach", params)


def _detach_keys(tty: bool, stdin: bool, keys: str) -> bytes | None:
    """Detach keys are watched for only when a terminal is attached to a tty container, like docker."""
    if not (tty and stdin and os.isatty(0)):
        return None
    from berth.cli.streams import detach_sequence

    try:
        return detach_sequence(keys)
    except ValueError as e:
        raise CLIError(str(e), 1)


def _wait_status(wait_resp) -> int:
    import json

    try:
        # The answer is one JSON object; take it as soon as it is whole rather than waiting for the
        # end of the chunked body (as docker's CLI decodes it).
        buf = b""
        res = None
        for data in wait_resp.iter_raw():
            buf += data
            try:
                res = json.loads(buf)
                break
            except ValueError:
                continue
        res = res or {}
    except (ClientError, OSError, ValueError) as e:
        _err(f"error waiting for container: {e}")
        return 125
    err = res.get("Error")
    if err and err.get("Message"):
        _err(f"error waiting for container: {err['Message']}")
    return int(res.get("StatusCode", 125))


def _await_removal(wait_resp, timeout: float = 10.0) -> None:
    """After a failed start with --rm, docker waits until the daemon removed the container, so that
    it is gone when the command returns; bounded here so that a daemon that never removes it cannot
    hang the CLI."""
    try:
        wait_resp.conn.sock.settimeout(timeout)
        wait_resp.read()
    except (ClientError, OSError):
        pass


def cmd_run(client: Client, o: argparse.Namespace) -> int:
    stdin_tty = os.isatty(0)
    if o.tty and o.interactive and not stdin_tty:
        raise CLIError("the input device is not a TTY", 1)
    cid = create_container(client, o, "run")
    attach = {x.lower() for x in o.attach} or ({"stdout", "stderr"} | ({"stdin"} if o.interactive else set()))
    conn = None
    try:
        if not o.detach:
            conn = _attach(client, cid, "stdin" in attach, "stdout" in attach, "stderr" in attach)
        cond = "removed" if o.rm and not o.detach else "next-exit"
        wait_resp = client.request("POST", f"/containers/{cid}/wait", {"condition": cond})
        try:
            client.request("POST", f"/containers/{cid}/start").read()
        except APIError as e:
            if conn:
                conn.close()
            if o.rm and not o.detach:
                _await_removal(wait_resp)
            wait_resp.close()
            raise _run_error("run", e, start_failure_code(e.message))
    except APIError as e:
        raise _run_error("run", e)
    if o.detach:
        wait_resp.close()
        print(cid)
        return 0
    from berth.cli.streams import pump, raw_terminal

    if o.tty:
        resize(client, cid)
    proxy = o.sig_proxy == "true"
    keys = _detach_keys(o.tty, "stdin" in attach, o.detach_keys)
    with raw_terminal(o.tty and "stdin" in attach):
        assert conn is not None
        try:
            detached = pump(
                conn,
                tty=o.tty,
                stdin="stdin" in attach,
                on_signal=_signal_forwarder(client, cid, o.tty, proxy),
                detach_keys=keys,
            )
        finally:
            conn.close()
    if detached:
        wait_resp.close()
        return 0
    return _wait_status(wait_resp)


# ------------------------------------------------------------------------------ start / attach


def add_start(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR and forward signals")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")
    p.add_argument("--detach-keys", default="", help="Override the key sequence for detaching a container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def cmd_start(client: Client, o: argparse.Namespace) -> int:
    if o.attach or o.interactive:
        if len(o.containers) > 1:
            raise CLIError("berth: you cannot start and attach multiple containers at once", 1)
        info = client.get_json(f"/containers/{o.containers[0]}/json")
        cid = info["Id"]
        cfg = info.get("Config") or {}
        tty = bool(cfg.get("Tty"))
        stdin = o.interactive and bool(cfg.get("OpenStdin"))
        conn = _attach(client, cid, stdin, True, True)
        wait_resp = client.request("POST", f"/containers/{cid}/wait", {"condition": "next-exit"})
        try:
            client.request("POST", f"/containers/{cid}/start").read()
        except APIError as e:
            conn.close()
            wait_resp.close()
            raise CLIError(str(e), start_failure_code(e.message) if e.status >= 500 else 1)
        from berth.cli.streams import pump, raw_terminal

        if tty:
            resize(client, cid)
        keys = _detach_keys(tty, stdin, o.detach_keys)
        with raw_terminal(tty and stdin):
            try:
                detached = pump(conn, tty=tty, stdin=stdin, on_signal=_signal_forwarder(client, cid, tty, not tty),
                                detach_keys=keys)
            finally:
                conn.close()
        if detached:
            wait_resp.close()
            return 0
        return _wait_status(wait_resp)
    failed = []
    for c in o.containers:
        try:
            client.request("POST", f"/containers/{c}/start").read()
            print(c)
        except APIError as e:
            _err(str(e))
            failed.append(c)
    if failed:
        raise CLIError(f"Error: failed to start containers: {', '.join(failed)}", 1)
    return 0


def add_attach(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN")
    p.add_argument("--sig-proxy", default="true", choices=["true", "false"], help="Proxy all received signals to the process")
    p.add_argument("--detach-keys", default="", help="Override the key sequence for detaching a container")
    p.add_argument("container", metavar="CONTAINER")


def cmd_attach(client: Client, o: argparse.Namespace) -> int:
    wait_resp = client.request("POST", f"/containers/{o.container}/wait")
    info = client.get_json(f"/containers/{o.container}/json")
    state = info.get("State") or {}
    if not state.get("Running"):
        wait_resp.close()
        raise CLIError("You cannot attach to a stopped container, start it first", 1)
    if state.get("Paused"):
        wait_resp.close()
        raise CLIError("You cannot attach to a paused container, unpause it first", 1)
    cfg = info.get("Config") or {}
    tty = bool(cfg.get("Tty"))
    stdin = not o.no_stdin and bool(cfg.get("OpenStdin"))
    conn = _attach(client, info["Id"], stdin, True, True)
    from berth.cli.streams import pump, raw_terminal

    if tty and os.isatty(1):
        resize(client, info["Id"])
    keys = _detach_keys(tty, stdin, o.detach_keys)
    with raw_terminal(tty and stdin):
        try:
            detached = pump(conn, tty=tty, stdin=stdin,
                            on_signal=_signal_forwarder(client, info["Id"], tty, o.sig_proxy == "true"), detach_keys=keys)
        finally:
            conn.close()
    if detached:
        wait_resp.close()
        return 0
    return _wait_status(wait_resp)


# ------------------------------------------------------------------------------ exec


def add_exec(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--detach", action="store_true", help="Detached mode: run command in the background")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("-e", "--env", action="append", default=[], help="Set environment variables")
    p.add_argument("--env-file", action="append", default=[], help="Read in a file of environment variables")
    p.add_argument("-u", "--user", default="", help="Username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("-w", "--workdir", default="", help="Working directory inside the container")
    p.add_argument("--privileged", action="store_true", help="Give extended privileges to the command")
    p.add_argument("--detach-keys", default="", help="Override the key sequence for detaching a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")


def cmd_exec(client: Client, o: argparse.Namespace) -> int:
    from berth.cli.options import env_list, parse_env_file

    if not o.command:
        raise CLIError("berth: 'berth exec' requires at least 2 arguments.\nSee 'berth exec --help'.", 1)
    if o.tty and o.interactive and not os.isatty(0):
        raise CLIError("the input device is not a TTY", 1)
    try:
        env: list[str] = []
        for f in o.env_file:
            env += parse_env_file(f)
        env += env_list(o.env)
    except UsageError as e:
        raise CLIError(str(e), 125)
    client.get_json(f"/containers/{o.container}/json")
    body = {
        "User": o.user,
        "Privileged": o.privileged,
        "Tty": o.tty,
        "AttachStdin": o.interactive and not o.detach,
        "AttachStderr": not o.detach,
        "AttachStdout": not o.detach,
        "Detach": o.detach,
        "DetachKeys": o.detach_keys,
        "Env": env or None,
        "WorkingDir": o.workdir,
        "Cmd": list(o.command),
    }
    exec_id = client.post_json(f"/containers/{o.container}/exec", body)["Id"]
    if o.detach:
        client.request("POST", f"/exec/{exec_id}/start", body={"Detach": True, "Tty": o.tty}).read()
        return 0
    try:
        conn = client.hijack(f"/exec/{exec_id}/start", body={"Detach": False, "Tty": o.tty})
    except APIError as e:
        raise CLIError(str(e), start_failure_code(e.message) if e.status >= 500 else 1)
    from berth.cli.streams import pump, raw_terminal

    if o.tty:
        resize(client, o.container, exec_id)
    keys = _detach_keys(o.tty, o.interactive, o.detach_keys)
    with raw_terminal(o.tty and o.interactive):
        try:
            detached = pump(conn, tty=o.tty, stdin=o.interactive, detach_keys=keys,
                            on_signal=_signal_forwarder(client, o.container, o.tty, False, exec_id) if o.tty else None)
        finally:
            conn.close()
    if detached:
        return 0
    info = client.get_json(f"/exec/{exec_id}/json") or {}
    code = info.get("ExitCode")
    return int(code) if code is not None else 0


# ------------------------------------------------------------------------------ wait


def add_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def cmd_wait(client: Client, o: argparse.Namespace) -> int:
    failed = False
    for c in o.containers:
        try:
            res = client.post_json(f"/containers/{c}/wait")
            print(res.get("StatusCode"))
        except APIError as e:
            _err(str(e))
            failed = True
    return 1 if failed else 0
