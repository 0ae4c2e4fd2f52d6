"""Lost output under concurrency, through docker-py against one berthd (a diagnosis, not a figure).

Runs ROUNDS rounds of N concurrent `containers.run(IMAGE, ["echo", "p<i>"], remove=True)` while THREADS
threads loop `exec_run` (demuxed `echo o; echo e >&2`, and `echo x; exit 3`) in a running container, and
counts the calls whose output or exit code is wrong. Seen on 2026-11-29: runs with empty output
(docker-py reads the logs with follow) with the shared monitor host only, at 07:25-07:30; execs with no
output with both monitor modes, until berthd held hijacked streams until the client has read the 101's
head (docker-py reads the head buffered and the stream raw: issues 3332, 2042).

Usage: python stress-dockerpy.py unix://SOCK [IMAGE (bench-busybox)] [N (50)] [ROUNDS (3)] [THREADS (2)]
The image needs busybox's echo and sh; the exec container is started (and removed) here.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import docker


def main() -> int:
    url = sys.argv[1]
    image = sys.argv[2] if len(sys.argv) > 2 else "bench-busybox"
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    clients = [docker.DockerClient(base_url=url, timeout=240, max_pool_size=4) for _ in range(5)]
    target = clients[0].containers.run(image, ["sleep", "3600"], detach=True, network_mode="none")
    done = threading.Event()
    exec_bad: list[str] = []
    exec_n = [0]

    def execs() -> None:
        cl = docker.DockerClient(base_url=url, timeout=60)
        c = cl.containers.get(target.id)
        while not done.is_set():
            r = c.exec_run("sh -c 'echo o; echo e >&2'", demux=True)
            if r.output != (b"o\n", b"e\n"):
                exec_bad.append(f"demux: {r.output!r}")
            r = c.exec_run(["sh", "-c", "echo x; exit 3"])
            if (r.exit_code, r.output) != (3, b"x\n"):
                exec_bad.append(f"exit/output: {(r.exit_code, r.output)!r}")
            exec_n[0] += 2
        cl.close()

    def one(i: int) -> bytes | str:
        try:
            return clients[i % 5].containers.run(image, ["echo", f"p{i}"], remove=True, network_mode="none")
        except Exception as e:  # noqa: BLE001 - counted as a failure
            return f"{type(e).__name__}: {e}"

    ts = [threading.Thread(target=execs) for _ in range(threads)]
    for t in ts:
        t.start()
    run_bad = 0
    try:
        for r in range(rounds):
            with ThreadPoolExecutor(n) as ex:
                res = list(ex.map(one, range(n)))
            bad = [(i, x) for i, x in enumerate(res) if x != f"p{i}\n".encode()]
            run_bad += len(bad)
            print(f"round {r + 1}: {len(bad)}/{n} runs with wrong output {bad[:3]}")
    finally:
        done.set()
        for t in ts:
            t.join()
        target.remove(force=True)
        for cl in clients:
            cl.close()
    print(f"runs: {run_bad}/{n * rounds} wrong; execs: {len(exec_bad)}/{exec_n[0]} wrong {exec_bad[:3]}")
    return 1 if run_bad or exec_bad else 0


if __name__ == "__main__":
    sys.exit(main())
