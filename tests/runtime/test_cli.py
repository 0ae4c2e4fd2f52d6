"""The command line itself: spec, features, --version, usage errors."""

import json
import subprocess

from .rt_helpers import RUNTIME


def cli(*args, cwd=None):
    return subprocess.run([RUNTIME, *args], capture_output=True, text=True, cwd=cwd, timeout=30)


def test_version():
    p = cli("--version")
    assert p.returncode == 0 and "version" in p.stdout and "spec" in p.stdout


def test_spec_writes_default_config(tmp_path):
    assert cli("spec", cwd=tmp_path).returncode == 0
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["root"]["path"] == "rootfs" and cfg["process"]["args"] == ["sh"]
    types = {n["type"] for n in cfg["linux"]["namespaces"]}
    assert {"pid", "network", "ipc", "uts", "mount"} <= types
    assert cli("spec", cwd=tmp_path).returncode != 0  # never overwrites


def test_spec_rootless(tmp_path):
    assert cli("spec", "--rootless", "--bundle", str(tmp_path)).returncode == 0
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert "user" in {n["type"] for n in cfg["linux"]["namespaces"]}
    assert cfg["linux"]["uidMappings"][0]["size"] == 1


def test_features():
    f = json.loads(cli("features").stdout)
    assert "poststop" in f["hooks"] and "rbind" in f["mountOptions"]
    assert "user" in f["linux"]["namespaces"] and "CAP_SYS_ADMIN" in f["linux"]["capabilities"]


def test_unknown_command_and_flag(tmp_path):
    p = cli("--root", str(tmp_path), "frobnicate")
    assert p.returncode != 0 and "frobnicate" in p.stderr
    p = cli("--root", str(tmp_path), "create", "--bogus-flag", "x")
    assert p.returncode != 0 and "bogus-flag" in p.stderr
