"""HostConfig.Sysctls: only namespaced keys, refused at create (400) with the key named, as dockerd+runc."""

from __future__ import annotations

import docker
import pytest


@pytest.fixture
def client(berthd):
    c = berthd.client()
    yield c
    c.close()


def test_non_namespaced_sysctl_is_a_400_naming_the_key(client, cname):
    with pytest.raises(docker.errors.APIError) as e:
        client.containers.run("busybox", ["true"], name=cname, sysctls={"kernel.panic": "1"})
    assert e.value.status_code == 400 and "kernel.panic" in str(e.value)
    assert not client.containers.list(all=True, filters={"name": cname})


def test_net_sysctl_with_host_network_is_refused(client, cname):
    with pytest.raises(docker.errors.APIError) as e:
        client.containers.run("busybox", ["true"], name=cname, network_mode="host",
                              sysctls={"net.ipv4.ip_forward": "1"})
    assert e.value.status_code == 400 and "net.ipv4.ip_forward" in str(e.value)


def test_namespaced_sysctl_is_set(client, cname):
    out = client.containers.run("busybox", ["cat", "/proc/sys/kernel/shm_rmid_forced"], name=cname,
                                remove=True, sysctls={"kernel.shm_rmid_forced": "1"})
    assert out == b"1\n"
