"""Dockerfile-style changes for import/commit."""

import pytest

from berth.errors import InvalidArgument
from berth.images.changes import apply_changes, split_words


def test_apply_all_instructions():
    cfg = {"Env": ["PATH=/bin", "A=old"], "WorkingDir": "/srv"}
    apply_changes(cfg, [
        'CMD ["echo", "hi"]',
        "entrypoint /bin/sh -x",
        'ENV A=new B="two words" C=a\\ b',
        "ENV LEGACY some value here",
        'LABEL com.x=1 "quoted key"=v',
        "EXPOSE 80 53/udp 8000-8002/tcp",
        "USER nobody:nogroup",
        "WORKDIR app",
        'VOLUME ["/data", "/logs"]',
        "VOLUME /cache",
        "STOPSIGNAL SIGUSR1",
        "ONBUILD run echo built",
    ])
    assert cfg["Cmd"] == ["echo", "hi"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/sh -x"]
    assert cfg["Env"] == ["PATH=/bin", "A=new", "B=two words", "C=a b", "LEGACY=some value here"]
    assert cfg["Labels"] == {"com.x": "1", "quoted key": "v"}
    assert set(cfg["ExposedPorts"]) == {"80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"}
    assert cfg["User"] == "nobody:nogroup"
    assert cfg["WorkingDir"] == "/srv/app"
    assert set(cfg["Volumes"]) == {"/data", "/logs", "/cache"}
    assert cfg["StopSignal"] == "SIGUSR1"
    assert cfg["OnBuild"] == ["RUN echo built"]


@pytest.mark.parametrize("change,needle", [
    ("FROM busybox", "not a valid change command"),
    ("RUN echo", "not a valid change command"),
    ("EXPOSE 70000", "1-65535"),
    ("EXPOSE 80/icmp", "protocol"),
    ("EXPOSE abc", "not a port"),
    ("ENV", "at least one argument"),
    ("ENV =x", "empty key"),
    ('LABEL a="unterminated', "unterminated"),
    ("STOPSIGNAL SIGNOPE", "unknown signal"),
    ("ONBUILD ONBUILD RUN x", "not allowed"),
    ("CMD", "needs a command"),
    ("", "empty instruction"),
])
def test_bad_changes(change, needle):
    cfg = {"Env": ["A=1"]}
    with pytest.raises(InvalidArgument) as e:
        apply_changes(cfg, ["ENV B=2", change])
    assert needle in str(e.value) and "changes[1]" in str(e.value)
    assert cfg == {"Env": ["A=1"]}  # nothing applied


def test_split_words():
    assert split_words("a 'b c' \"d \\\"e\\\"\" f\\ g", "x") == ["a", "b c", 'd "e"', "f g"]


def test_variable_substitution():
    cfg = {"Env": ["BASE=/opt", "N=8080"]}
    apply_changes(cfg, [
        "ENV APP=$BASE/app OLD=${N} D=${MISSING:-dflt} P=${BASE:+set} Q='$BASE' E=\\$BASE",
        "WORKDIR $APP",
        "EXPOSE ${N}/udp",
        "LABEL where=${APP}",
        "CMD echo $BASE",
    ])
    assert cfg["Env"][2:] == ["APP=/opt/app", "OLD=8080", "D=dflt", "P=set", "Q=$BASE", "E=$BASE"]
    assert cfg["WorkingDir"] == "/opt/app"
    assert cfg["ExposedPorts"] == {"8080/udp": {}}
    assert cfg["Labels"] == {"where": "/opt/app"}
    assert cfg["Cmd"] == ["/bin/sh", "-c", "echo $BASE"]  # CMD is left to the shell
    # ENV values on one line see the environment from before that line
    cfg = {"Env": ["A=old"]}
    apply_changes(cfg, ["ENV A=new B=$A"])
    assert cfg["Env"] == ["A=new", "B=old"]
    with pytest.raises(InvalidArgument, match="bad substitution"):
        apply_changes(cfg, ["ENV X=${1bad}"])
