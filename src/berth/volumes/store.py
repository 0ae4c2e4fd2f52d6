"""Named volumes for the "local" driver: `<root>/volumes/<name>/_data`, metadata in sqlite.

A volume is "in use" while a container holds it (acquire/release, recorded in the db, so it survives a
daemon restart). With options (type/device/o) the volume is a mount (tmpfs, bind, nfs...) made when the
first container acquires it and undone when the last one releases it, like Docker's local driver.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from berth import errors
from berth.linux import libc, mountinfo
from berth.storage import _fsutil as fs

COMPONENT = "volumes"
MIGRATIONS = [
    """
    CREATE TABLE volumes (
        name TEXT PRIMARY KEY,
        driver TEXT NOT NULL,
        created_at TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        options TEXT NOT NULL DEFAULT '{}',
        anonymous INTEGER NOT NULL DEFAULT 0,
        populated INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE volume_refs (
        volume TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE,
        container_id TEXT NOT NULL,
        PRIMARY KEY (volume, container_id)
    );
    """,
]

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
LOCAL_OPTIONS = {"type", "device", "o"}
_FLAG_OPTS = {
    "ro": libc.MS_RDONLY, "rw": 0, "nosuid": libc.MS_NOSUID, "nodev": libc.MS_NODEV,
    "noexec": libc.MS_NOEXEC, "noatime": libc.MS_NOATIME, "bind": libc.MS_BIND,
    "rbind": libc.MS_BIND | libc.MS_REC,
}
_FILTERS = {"name", "label", "label!", "dangling", "driver"}


@dataclass
class Volume:
    name: str
    mountpoint: str
    created_at: str
    driver: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    scope: str = "local"
    anonymous: bool = False
    ref_count: int = 0

    def inspect(self) -> dict[str, Any]:
        """The Docker API's Volume object."""
        return {
            "Name": self.name, "Driver": self.driver, "Mountpoint": self.mountpoint,
            "CreatedAt": self.created_at, "Labels": dict(self.labels), "Options": dict(self.options),
            "Scope": self.scope,
        }


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _norm_filters(filters: dict | None) -> dict[str, list[str]]:
    """Docker sends {"key": ["v", ...]} or {"key": {"v": true}}; accept those and plain strings."""
    out: dict[str, list[str]] = {}
    for k, v in (filters or {}).items():
        if isinstance(v, str):
            vals = [v]
        elif isinstance(v, dict):
            vals = [x for x, on in v.items() if on]
        elif isinstance(v, bool):
            vals = [str(v).lower()]
        else:
            vals = [str(x) for x in v]
        out[k] = vals
    return out


def _truthy(v: str, key: str) -> bool:
    if v.lower() in ("1", "true"):
        return True
    if v.lower() in ("0", "false"):
        return False
    raise errors.InvalidArgument(f"volume filter {key}: invalid boolean {v!r}")


def _label_match(labels: dict[str, str], expr: str) -> bool:
    if "=" in expr:
        k, v = expr.split("=", 1)
        return labels.get(k) == v
    return expr in labels


class VolumeStore:
    def __init__(self, root: str, db) -> None:
        self.root = os.path.realpath(root)
        self.dir = os.path.join(self.root, "volumes")
        os.makedirs(self.dir, mode=0o701, exist_ok=True)
        self.db = db
        db.migrate(COMPONENT, MIGRATIONS)
        self._recover()

    # -- helpers -----------------------------------------------------------------------------------
    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _data(self, name: str) -> str:
        return os.path.join(self.dir, name, "_data")

    def _row_to_volume(self, row: sqlite3.Row, refs: int = 0) -> Volume:
        return Volume(
            name=row["name"], driver=row["driver"], mountpoint=self._data(row["name"]),
            created_at=row["created_at"], labels=json.loads(row["labels"]), options=json.loads(row["options"]),
            anonymous=bool(row["anonymous"]), ref_count=refs,
        )

    def _refs(self, name: str) -> list[str]:
        return [r[0] for r in self.db.query(
            "SELECT container_id FROM volume_refs WHERE volume = ? ORDER BY container_id", (name,))]

    def _recover(self) -> None:
        """Drop half-made/half-removed dirs of dead processes; adopt a complete dir that lost its row
        (a crash between rename and commit) so that no user data disappears silently."""
        known = {r[0] for r in self.db.query("SELECT name FROM volumes")}
        for e in os.scandir(self.dir):
            m = re.match(r"^\.(tmp|rm)-(\d+)-", e.name)
            if m:
                if not fs.pid_alive(int(m.group(2))):
                    self._unmount_all(e.path)
                    fs.rmtree(e.path)
            elif e.is_dir() and e.name not in known and NAME_RE.match(e.name) and os.path.isdir(
                os.path.join(e.path, "_data")
            ):
                created = datetime.fromtimestamp(e.stat().st_mtime, UTC).replace(microsecond=0)
                self.db.execute(
                    "INSERT OR IGNORE INTO volumes(name, driver, created_at, populated) VALUES (?, 'local', ?, 1)",
                    (e.name, created.isoformat().replace("+00:00", "Z")),
                )

    def _unmount_all(self, path: str) -> None:
        for mp, _ in mountinfo.mounts_under(path):
            libc.umount(mp)

    # -- API ---------------------------------------------------------------------------------------
    def create(
        self, name: str | None = None, driver: str = "local", labels: dict | None = None,
        options: dict | None = None,
    ) -> Volume:
        labels = dict(labels or {})
        options = {k: str(v) for k, v in (options or {}).items()}
        driver = driver or "local"
        if driver != "local":
            raise errors.Unsupported(f"volume driver {driver!r} is not supported (only \"local\")")
        anonymous = name is None or name == ""
        if anonymous:
            name = secrets.token_hex(32)
        elif not NAME_RE.match(name) or len(name) > 255:
            raise errors.InvalidArgument(
                f"invalid volume name {name!r}: use [a-zA-Z0-9][a-zA-Z0-9_.-]+ (at least 2 characters)"
            )
        bad = set(options) - LOCAL_OPTIONS
        if bad:
            raise errors.InvalidArgument(
                f"volume {name}: unknown option(s) {', '.join(sorted(bad))} for the local driver "
                f"(known: type, device, o)"
            )
        if options and "type" not in options:
            raise errors.InvalidArgument(f"volume {name}: option 'type' is required with device/o")
        existing = self.db.query_one("SELECT * FROM volumes WHERE name = ?", (name,))
        if existing is not None:
            return self._row_to_volume(existing, len(self._refs(name)))  # docker: create is idempotent
        tmp = os.path.join(self.dir, f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{name}")
        os.makedirs(os.path.join(tmp, "_data"), mode=0o755)
        try:
            with self.db.tx() as cur:
                try:
                    cur.execute(
                        "INSERT INTO volumes(name, driver, created_at, labels, options, anonymous) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (name, driver, _now(), json.dumps(labels, sort_keys=True),
                         json.dumps(options, sort_keys=True), int(anonymous)),
                    )
                except sqlite3.IntegrityError:  # created concurrently: return that one
                    raise _Exists from None
                os.rename(tmp, self._path(name))
        except _Exists:
            fs.rmtree(tmp)
            return self.get(name)
        except BaseException:
            fs.rmtree(tmp)
            raise
        return self.get(name)

    def get(self, name: str) -> Volume:
        row = self.db.query_one("SELECT * FROM volumes WHERE name = ?", (name,))
        if row is None:
            raise errors.NotFound(f"no such volume: {name}")
        return self._row_to_volume(row, len(self._refs(name)))

    def list(self, filters: dict | None = None) -> list[Volume]:
        f = _norm_filters(filters)
        bad = set(f) - _FILTERS
        if bad:
            raise errors.InvalidArgument(f"invalid volume filter(s): {', '.join(sorted(bad))}")
        counts = {r[0]: r[1] for r in self.db.query(
            "SELECT volume, COUNT(*) FROM volume_refs GROUP BY volume")}
        out = []
        for row in self.db.query("SELECT * FROM volumes ORDER BY name"):
            v = self._row_to_volume(row, counts.get(row["name"], 0))
            if "name" in f and not any(n in v.name for n in f["name"]):
                continue
            if "driver" in f and v.driver not in f["driver"]:
                continue
            if "label" in f and not all(_label_match(v.labels, e) for e in f["label"]):
                continue
            if "label!" in f and any(_label_match(v.labels, e) for e in f["label!"]):
                continue
            if "dangling" in f:
                wants = {_truthy(x, "dangling") for x in f["dangling"]}
                if (v.ref_count == 0) not in wants:
                    continue
            out.append(v)
        return out

    def remove(self, name: str, force: bool = False) -> None:
        """Refused (Conflict) while any container uses the volume, force or not (as Docker does for a
        volume in use); force only makes a missing volume a no-op."""
        with self.db.tx() as cur:
            row = cur.execute("SELECT name FROM volumes WHERE name = ?", (name,)).fetchone()
            if row is None:
                if force:
                    return
                raise errors.NotFound(f"no such volume: {name}")
            users = [r[0] for r in cur.execute(
                "SELECT container_id FROM volume_refs WHERE volume = ? ORDER BY container_id", (name,))]
            if users:
                raise errors.Conflict(
                    f"volume {name} is in use by container(s) {', '.join(u[:12] for u in users)}"
                )
            gone = os.path.join(self.dir, f".rm-{os.getpid()}-{secrets.token_hex(4)}-{name}")
            cur.execute("DELETE FROM volumes WHERE name = ?", (name,))
            self._unmount_all(self._path(name))
            if os.path.exists(self._path(name)):
                os.rename(self._path(name), gone)
        if os.path.exists(gone):
            fs.rmtree(gone)

    def prune(self, filters: dict | None = None, all: bool = True) -> tuple[list[str], int]:
        """Remove unused volumes (matching the label filters); with all=False only anonymous ones
        (Docker API >= 1.42 default unless the `all` filter is set). Returns (names, bytes reclaimed)."""
        f = _norm_filters(filters)
        if "all" in f:
            all = any(_truthy(x, "all") for x in f.pop("all"))
        bad = set(f) - {"label", "label!"}
        if bad:
            raise errors.InvalidArgument(f"invalid volume prune filter(s): {', '.join(sorted(bad))}")
        f["dangling"] = ["true"]
        names, reclaimed = [], 0
        for v in self.list(f):
            if not all and not v.anonymous:
                continue
            size = fs.tree_size(v.mountpoint) if not v.options else 0
            try:
                self.remove(v.name)
            except (errors.Conflict, errors.NotFound):
                continue  # acquired or removed meanwhile
            names.append(v.name)
            reclaimed += size
        return names, reclaimed

    def acquire(self, name: str, container_id: str) -> str:
        """Record that `container_id` uses the volume; mount it (options) for the first user. Returns
        the path to bind into the container."""
        with self.db.tx() as cur:
            row = cur.execute("SELECT options FROM volumes WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise errors.NotFound(f"no such volume: {name}")
            cur.execute(
                "INSERT OR IGNORE INTO volume_refs(volume, container_id) VALUES (?, ?)", (name, container_id))
            options = json.loads(row["options"])
            if options and not mountinfo.is_mountpoint(self._data(name)):
                self._mount(name, options)
        return self._data(name)

    def release(self, name: str, container_id: str) -> None:
        with self.db.tx() as cur:
            row = cur.execute("SELECT options FROM volumes WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise errors.NotFound(f"no such volume: {name}")
            cur.execute("DELETE FROM volume_refs WHERE volume = ? AND container_id = ?", (name, container_id))
            left = cur.execute("SELECT COUNT(*) FROM volume_refs WHERE volume = ?", (name,)).fetchone()[0]
            if left == 0 and json.loads(row["options"]):
                self._unmount_all(self._data(name))

    def usage(self, name: str) -> int:
        """Bytes stored in the volume (docker system df's UsageData.Size; extension)."""
        return fs.tree_size(self.get(name).mountpoint)

    def users(self, name: str) -> list[str]:
        """Container ids holding the volume (extension)."""
        self.get(name)
        return self._refs(name)

    def populate_from(self, name: str, src_dir: str, sub: str | None = None) -> bool:
        """First use of a new volume: copy the image's content at the mount path into it (only when
        the volume has never been populated and is still empty). Returns whether it copied.
        With sub, src_dir is a container's root and sub the mount path, resolved inside that root.
        The copy goes through fds (berth.linux.rootcopy): another container already using the
        volume cannot redirect it outside the volume."""
        with self.db.tx() as cur:
            row = cur.execute("SELECT populated FROM volumes WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise errors.NotFound(f"no such volume: {name}")
            if row["populated"]:
                return False
            cur.execute("UPDATE volumes SET populated = 1 WHERE name = ?", (name,))
        from berth.linux.paths import open_in_root
        from berth.linux.rootcopy import copy_meta, copy_tree

        try:
            src = open_in_root(src_dir, sub or "/", os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return False  # nothing (or no directory) at the mount path
        try:
            dst = os.open(self._data(name), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            os.close(src)
            return False
        try:
            with os.scandir(dst) as it:
                if next(it, None) is not None:
                    return False
            copy_tree(src, dst)
            copy_meta(src, dst)  # the volume's root takes the image directory's owner and mode
        finally:
            os.close(src)
            os.close(dst)
        return True

    def _mount(self, name: str, options: dict[str, str]) -> None:
        kind = options.get("type", "")
        flags, data = 0, []
        for opt in filter(None, options.get("o", "").split(",")):
            if opt in _FLAG_OPTS:
                flags |= _FLAG_OPTS[opt]
            else:
                data.append(opt)
        device = options.get("device") or kind
        target = self._data(name)
        try:
            if flags & libc.MS_BIND:
                libc.mount(device, target, None, flags, None)
                if flags & ~(libc.MS_BIND | libc.MS_REC):
                    libc.mount(None, target, None, flags | libc.MS_REMOUNT, None)
            else:
                libc.mount(device, target, kind, flags, ",".join(data) or None)
        except OSError as e:
            raise errors.InvalidArgument(f"volume {name}: mounting {kind} {device}: {e.strerror}")


class _Exists(Exception):
    pass
