"""berthd: berth's engine daemon, serving the Docker Engine API (v1.41) on a unix socket.

Layout
  main.py        flags (-H, --root, --exec-root, --group, --storage-driver, --runtime, --monitor), socket, lock
  http.py        asyncio + h11 server: keep-alive, chunked bodies, hijack (101 UPGRADED), half-close,
                 the one place where berth.errors become HTTP statuses ({"message": ...})
  routers/       route tables per area: system, containers, execs, images, volumes, archive, networks
  engine.py      container lifecycle; the only code that changes container state; restore on start
  container.py   the container record (container.json, tmp+fsync+rename) and its inspect/ps shapes
  spec.py        Docker config -> OCI config.json with Docker's defaults (caps, seccomp, masked paths)
  monitorctl.py  starting monitors (in the shared monitor host) and talking to their sockets
  execs.py, health.py, logs.py, inspectors.py (top, stats), events.py, audit.py, storage.py

Processes: berthd never forks containers. Per container start it asks the monitor host
(berth.monitor.host: one detached, warm, single-threaded process per exec root, started on demand and
found again after a restart through <exec-root>/monitor-host.sock) to monitor the container. The host
is the child subreaper, runs berth-runtime create/start (in-process when the runtime is berth's own: a
fork of the already-imported CLI instead of a fresh interpreter), holds the stdio, writes the json-file
log and reports the exit. It outlives berthd; on start berthd reconnects to each container's
monitor.sock. `--monitor per-container` starts one host per container instead (isolation).

State: <root>/containers/<id>/ (container.json, <id>-json.log[.N], hostname, hosts, resolv.conf,
monitor.log), <root>/events.jsonl (event history), <root>/audit.jsonl (audit log);
<exec-root>/containers/<id>/ (config.json bundle, monitor.sock, exit.json), <exec-root>/runtime.

Audit log: every request that is not GET/HEAD is appended to <root>/audit.jsonl and fsynced
before the response is complete. Query it with

  GET /berth/audit?since=<unix seconds>&until=<unix seconds>&uid=<n>&object=<prefix>&limit=<n>

which returns a JSON array, oldest first, of
  {"time": RFC3339, "timeUnix": float, "uid", "gid", "pid": the caller (SO_PEERCRED), "method", "path"
   (without /vN.NN), "query" (without filters), "object" (container/image/volume named by the request,
   or null), "status": HTTP status, "error": message or null, "rid": request id}
A request is logged when routed (status null) and again when answered (same rid); the query merges
the two. A request berthd died in keeps status null, with error "interrupted: berthd stopped before
answering"; one still in flight has status null and error null.

Crash safety (tests/daemon/test_crash.py): BERTH_CRASH_AT=<point> SIGKILLs berthd at berth.images.crash
points: the storage core's (container-fs-created, commit-*, before/after-image-tx, ...) and berthd's
daemon-created, daemon-monitor-spawned, daemon-started (engine.create/start), daemon-remove-marked,
daemon-removed (engine.remove), daemon-commit-paused (routers/images). restore() finishes or undoes
each: a container is whole (created or running) or gone; "removing" is saved before anything is
deleted, so a removal is finished; a container paused by a commit (CommitPause in container.json) is
resumed. Exec records are kept in <root>/containers/<id>/exec-<exec id>.json and go with the container;
the monitor writes each exec's exit code to <exec-root>/containers/<id>/exec-<id[:12]>.exit, which is
how an exec that outlived a berthd restart gets its code.
"""
