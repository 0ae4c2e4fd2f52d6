"""Output conventions: Go-template subset, Docker tables, human sizes/durations, run flag mapping."""

from __future__ import annotations

import argparse
import time

import pytest

from berth.cli import format as fmt
from berth.cli.containers import ContainerRow
from berth.cli.images import image_rows
from berth.cli.options import (
    UsageError,
    add_container_flags,
    build_create_body,
    duration_ns,
    parse_mount,
    parse_volume,
    ram_bytes,
)
from berth.cli.template import Template, TemplateError

INSPECT = {
    "Id": "ab" * 32,
    "Name": "/web",
    "State": {"Status": "running", "Running": True, "ExitCode": 0, "Pid": 42},
    "Config": {"Env": ["A=1", "B=2"], "Labels": {"com.x": "y", "a": "b"}, "Cmd": ["sh"], "Tty": False},
    "HostConfig": {"Memory": 67108864, "NanoCpus": 500000000},
    "Mounts": [{"Type": "volume", "Name": "v1", "Destination": "/data"}, {"Type": "bind", "Source": "/h", "Destination": "/b"}],
    "Empty": None,
}


@pytest.mark.parametrize(
    ("tpl", "out"),
    [
        ("{{.State.Status}}", "running"),
        ("{{.Name}} {{.State.Pid}}", "/web 42"),
        ("{{.HostConfig.Memory}}", "67108864"),
        ("{{.State.Running}}", "true"),
        ("{{json .Config.Labels}}", '{"a":"b","com.x":"y"}'),
        ("{{json .Config.Cmd}}", '["sh"]'),
        ('{{index .Config.Labels "com.x"}}', "y"),
        ("{{index .Config.Env 1}}", "B=2"),
        ('{{join .Config.Env ","}}', "A=1,B=2"),
        ("{{upper .State.Status}}-{{lower .Name}}", "RUNNING-/web"),
        ('{{printf "%s:%d" .Name .State.Pid}}', "/web:42"),
        ('{{printf "%-6s|" .State.Status}}', "running|"),
        ("{{.Config.Env}}", "[A=1 B=2]"),
        ("{{.Config.Labels}}", "map[a:b com.x:y]"),
        ("{{.Nope}}", "<no value>"),
        ("{{.Empty}}", "<nil>"),
        ("{{range .Mounts}}{{.Destination}} {{end}}", "/data /b "),
        ("{{range $i, $m := .Mounts}}{{$i}}={{$m.Type}};{{end}}", "0=volume;1=bind;"),
        ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
        ("{{if eq .State.Status \"exited\"}}x{{else if .State.Running}}r{{end}}", "r"),
        ("{{with .State}}{{.Pid}}{{end}}", "42"),
        ("{{.State.Status | upper}}", "RUNNING"),
        ("{{len .Mounts}}", "2"),
        ("a\n  {{- .Name -}}  \nb", "a/webb"),
        ("{{(index .Mounts 0).Name}}", "v1"),
        ("{{json .}}", None),
    ],
)
def test_template_subset(tpl, out):
    got = Template(tpl).render(INSPECT)
    if out is None:
        import json

        assert json.loads(got) == INSPECT
    else:
        assert got == out


@pytest.mark.parametrize("bad", ["{{.Name", "{{if .X}}", "{{nofunc .X}}", "{{end}}", "{{range .Mounts}}{{.Bogus.Deeper}}{{end}}"])
def test_template_errors(bad):
    with pytest.raises(TemplateError):
        Template(bad).render(INSPECT)


def test_json_key_order_like_go():
    # structs (capitalised fields) keep the daemon's order; maps get sorted
    got = Template("{{json .}}").render({"Name": "x", "Id": "y", "Labels": {"z": "1", "a": "2"}, "Ports": {"80/tcp": None, "443/tcp": None}})
    assert got == '{"Name":"x","Id":"y","Labels":{"a":"2","z":"1"},"Ports":{"443/tcp":null,"80/tcp":null}}'
    ev = {"status": "die", "id": "i", "Type": "container", "Actor": {"ID": "i", "Attributes": {"name": "n", "exitCode": "2"}}, "timeNano": 1}
    assert Template("{{json .}}").render(ev) == ('{"status":"die","id":"i","Type":"container","Actor":{"ID":"i",'
                                                  '"Attributes":{"exitCode":"2","name":"n"}},"timeNano":1}')


def test_json_escapes_like_go():
    assert Template("{{json .}}").render({"a": "<b>&"}) == '{"a":"\\u003cb\\u003e\\u0026"}'


def test_human_units():
    assert fmt.human_size(4261000) == "4.26MB"
    assert fmt.human_size(0) == "0B"
    assert fmt.human_size(999) == "999B"
    assert fmt.human_size(1000) == "1kB"
    assert fmt.human_size(1536000, 4) == "1.536MB"
    assert fmt.bytes_size(1536 * 1024) == "1.5MiB"
    assert fmt.human_duration(0.3) == "Less than a second"
    assert fmt.human_duration(1) == "1 second"
    assert fmt.human_duration(45) == "45 seconds"
    assert fmt.human_duration(70) == "About a minute"
    assert fmt.human_duration(180) == "3 minutes"
    assert fmt.human_duration(3600) == "About an hour"
    assert fmt.human_duration(5 * 3600) == "5 hours"
    assert fmt.human_duration(3 * 86400) == "3 days"
    assert fmt.human_duration(20 * 86400) == "2 weeks"
    assert fmt.human_duration(90 * 86400) == "3 months"
    assert fmt.human_duration(800 * 86400) == "2 years"


def test_tabwriter_like_docker():
    out = fmt.tabwrite(["CONTAINER ID\tIMAGE\tNAMES", "0123456789ab\tbusybox\tx"])
    assert out == "CONTAINER ID   IMAGE     NAMES\n0123456789ab   busybox   x\n"


def _container(**kw):
    c = {"Id": "0123456789abcdef" * 4, "Names": ["/web"], "Image": "busybox", "Command": "sleep 300 with a long tail",
         "Created": int(time.time()) - 180, "State": "running", "Status": "Up 3 minutes", "Ports": [],
         "Labels": {"k": "v"}, "Mounts": [], "NetworkSettings": {"Networks": {"none": {}}}}
    c.update(kw)
    return c


def test_ps_table_and_formats():
    rows = [ContainerRow(_container())]
    out = fmt.render("", rows, ContainerRow.HEADERS,
                     "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}")
    head, line = out.splitlines()
    assert head.split() [:3] == ["CONTAINER", "ID", "IMAGE"]
    assert line.startswith("0123456789ab   busybox   \"sleep 300 with a lo…\"   3 minutes ago   Up 3 minutes   ")
    assert line.endswith("web")
    assert fmt.render("{{.ID}} {{.Names}} {{.Label \"k\"}}", rows, ContainerRow.HEADERS, "") == "0123456789ab web v\n"
    assert fmt.render("table {{.Names}}\\t{{.State}}", rows, ContainerRow.HEADERS, "") == "NAMES     STATE\nweb       running\n"
    import json

    j = json.loads(fmt.render("json", rows, ContainerRow.HEADERS, ""))
    assert j["Names"] == "web" and j["State"] == "running" and j["ID"] == "0123456789ab"


def test_images_rows():
    img = {"Id": "sha256:" + "f" * 64, "RepoTags": ["busybox:latest", "reg:5000/bb:1"], "RepoDigests": [],
           "Created": int(time.time()) - 7200, "Size": 4261000}
    rows = image_rows([img, {"Id": "sha256:" + "e" * 64, "RepoTags": None, "Created": 0, "Size": 0}], True, False)
    assert [(r.Repository, r.Tag, r.ID) for r in rows] == [
        ("busybox", "latest", "f" * 12), ("reg:5000/bb", "1", "f" * 12), ("<none>", "<none>", "e" * 12)]
    assert rows[0].Size == "4.26MB" and rows[0].CreatedSince == "2 hours ago"


def _opts(argv):
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-d", "--detach", action="store_true")
    add_container_flags(p)
    return p.parse_args(argv)


def test_run_flags_to_create_body(tmp_path, monkeypatch):
    envf = tmp_path / "env"
    envf.write_text("# comment\nFROMFILE=1\n\nPASSTHRU\n")
    monkeypatch.setenv("PASSTHRU", "yes")
    o = _opts([
        "--name", "opts", "-e", "FOO=bar", "--env-file", str(envf), "-v", "/h:/data:ro,rshared", "-v", "vol:/v",
        "-v", "/anon", "-p", "8080:80", "--memory", "64m", "--memory-swap", "-1", "--cpus", "0.5", "--pids-limit", "20",
        "--read-only", "--user", "1000", "-w", "/data", "--entrypoint", "/bin/busybox", "--restart", "on-failure:3",
        "--health-cmd", "true", "--health-interval", "5s", "--ulimit", "nofile=1024:2048", "--cap-add", "NET_ADMIN",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--init", "--device", "/dev/null:/dev/n:r",
        "--device-read-bps", "/dev/sda:1mb", "--tmpfs", "/run:size=64m", "--network", "none", "-h", "box",
        "--mount", "type=bind,source=/src,target=/dst,readonly,bind-propagation=rslave",
        "--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770", "-l", "a=b", "--cpuset-cpus", "0",
        "--cpu-shares", "512", "--blkio-weight", "300", "--memory-reservation", "32m", "--privileged",
        "busybox", "sleep", "-c", "300"])
    b = build_create_body(o)
    hc = b["HostConfig"]
    assert b["Image"] == "busybox" and b["Cmd"] == ["sleep", "-c", "300"]
    assert b["Env"] == ["FROMFILE=1", "PASSTHRU=yes", "FOO=bar"]
    assert hc["Binds"] == ["/h:/data:ro,rshared", "vol:/v"] and b["Volumes"] == {"/anon": {}}
    assert b["ExposedPorts"] == {"80/tcp": {}} and hc["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert hc["Memory"] == 64 << 20 and hc["MemorySwap"] == -1 and hc["NanoCpus"] == 500000000 and hc["PidsLimit"] == 20
    assert hc["ReadonlyRootfs"] and b["User"] == "1000" and b["WorkingDir"] == "/data"
    assert b["Entrypoint"] == ["/bin/busybox"]
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert b["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000}
    assert hc["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert hc["CapAdd"] == ["NET_ADMIN"] and hc["CapDrop"] == ["ALL"] and hc["SecurityOpt"] == ["no-new-privileges"]
    assert hc["Init"] is True and hc["Privileged"] is True
    assert hc["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "r"}]
    assert hc["BlkioDeviceReadBps"] == [{"Path": "/dev/sda", "Rate": 1 << 20}]
    assert hc["Tmpfs"] == {"/run": "size=64m"} and hc["NetworkMode"] == "none" and b["Hostname"] == "box"
    assert hc["Mounts"] == [
        {"Type": "bind", "Source": "/src", "Target": "/dst", "ReadOnly": True, "BindOptions": {"Propagation": "rslave"}},
        {"Type": "tmpfs", "Source": "", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1770}}]
    assert b["Labels"] == {"a": "b"} and hc["CpusetCpus"] == "0" and hc["CpuShares"] == 512
    assert hc["BlkioWeight"] == 300 and hc["MemoryReservation"] == 32 << 20
    assert b["AttachStdout"] and b["AttachStderr"] and not b["AttachStdin"]
    rm = build_create_body(_opts(["--rm", "-it", "--no-healthcheck", "busybox"]))
    assert rm["HostConfig"]["AutoRemove"] and rm["Tty"] and rm["OpenStdin"] and rm["StdinOnce"] and rm["AttachStdin"]
    assert rm["Healthcheck"] == {"Test": ["NONE"]} and rm["Cmd"] is None
    assert rm["HostConfig"]["NetworkMode"] == "default" and rm["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}


@pytest.mark.parametrize(
    "argv",
    [["--memory", "lots", "busybox"], ["--restart", "sometimes", "busybox"], ["-v", "rel/path:/x", "busybox"],
     ["--mount", "type=bind,target=/x", "busybox"], ["--health-interval", "5 parsecs", "busybox"],
     ["--rm", "--restart", "always", "busybox"], ["-p", "abc", "busybox"], ["--ulimit", "nofile", "busybox"]],
)
def test_bad_flags_are_usage_errors(argv):
    with pytest.raises(UsageError):
        build_create_body(_opts(argv))


def test_value_parsers():
    assert ram_bytes("1.5g") == 3 << 29 and ram_bytes("512kb") == 512 << 10 and ram_bytes("100") == 100
    assert duration_ns("1m30s") == 90 * 10**9 and duration_ns("500ms") == 5 * 10**8
    assert parse_volume("/a:/b:ro") == ("/a:/b:ro", None)
    assert parse_mount("type=volume,src=v,dst=/d,volume-nocopy")["VolumeOptions"] == {"NoCopy": True}
