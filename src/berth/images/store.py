"""The storage-core facade (`berth.images.Store`): images, tags, layers, container filesystems and
volumes under one root, as docs/architecture.md specifies.

    <root>/metadata.db   sqlite: images, tags, layers, container filesystems, leases (+ volumes)
    <root>/content/      blobs (manifests, configs, layer tars) by digest
    <root>/storage/      the storage driver's layers
    <root>/volumes/      named volumes
    <root>/tmp/          spool files of running operations (<pid>-...)

Every multi-step operation writes blobs first, then driver layers (published atomically by the
driver), then metadata in one transaction, holding a lease row meanwhile: a SIGKILL anywhere leaves
only unreferenced blobs/layers (removed by the next open's repair or by gc) and never a record that
points at something missing.
"""

from __future__ import annotations

import copy
import datetime
import fnmatch
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from berth.content import ContentStore
from berth.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, Unsupported
from berth.images import crash, dockerarchive, ocilayout
from berth.images import leases as leases_mod
from berth.images.changes import apply_changes
from berth.images.layerstore import LayerStore, driver_id_for
from berth.images.model import Image
from berth.images.pending import PendingImage, layer_media_type_of
from berth.images.schema import MIGRATIONS
from berth.images.sources import DirSource, Source, TarSource
from berth.layers.compression import compress, decompress
from berth.metadata import Database
from berth.oci import digest as dg
from berth.oci import image as oi
from berth.oci import reference

# Container-config keys an image config carries (docker commit keeps these from the container).
IMAGE_CONFIG_KEYS = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels",
                     "StopSignal", "OnBuild", "Healthcheck", "ArgsEscaped", "Shell", "StopTimeout")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch(ts: str | None) -> int:
    if not ts:
        return 0
    try:
        s = ts.replace("Z", "+00:00")
        if "." in s:  # fromisoformat accepts at most 6 fraction digits
            head, frac = s.split(".", 1)
            digits = "".join(c for c in frac if c.isdigit())
            s = f"{head}.{digits[:6]}{frac[len(digits):]}"
        return int(datetime.datetime.fromisoformat(s).timestamp())
    except ValueError:
        return 0


class Store:
    def __init__(self, root: str, driver: str | None = None) -> None:
        from berth.storage import get_driver

        self.root = os.path.abspath(root)
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        self.db = Database(os.path.join(self.root, "metadata.db"))
        self.db.migrate("images", MIGRATIONS)
        self.cs = ContentStore(os.path.join(self.root, "content"))
        self.driver = get_driver(driver, os.path.join(self.root, "storage"))
        self.driver_name: str = self.driver.name
        self.layers = LayerStore(self.db, self.driver, self.cs)
        self.tmp = os.path.join(self.root, "tmp")
        os.makedirs(self.tmp, mode=0o700, exist_ok=True)
        self._volumes = None
        self._repair()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def volumes(self):
        if self._volumes is None:
            from berth.volumes import VolumeStore

            self._volumes = VolumeStore(self.root, self.db)
        return self._volumes

    # -- repair ------------------------------------------------------------------------------------
    def _repair(self) -> None:
        """Undo what dead operations left: their leases (and with them the protection of their
        half-made layers), spool files, and queued driver deletions."""
        _, stale = leases_mod.split_live(self.db)
        for name in os.listdir(self.tmp):
            pid = name.split("-", 1)[0]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                p = os.path.join(self.tmp, name)
                shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
        trash = self.db.query_one("SELECT COUNT(*) FROM driver_trash")[0]
        if stale:
            with self.db.tx() as cur:
                cur.executemany("DELETE FROM leases WHERE id = ?", [(s,) for s in stale])
        if stale or trash:
            self.layers.gc()

    def _spool(self, suffix: str = "") -> BinaryIO:
        return tempfile.NamedTemporaryFile(dir=self.tmp, prefix=f"{os.getpid()}-", suffix=suffix)

    @contextmanager
    def _op(self, op: str) -> Iterator[leases_mod.Lease]:
        """A lease for one of our operations; if it fails, what it made and nothing else uses goes
        (bad input leaves nothing behind). A SIGKILL skips this: the next open repairs instead."""
        le = leases_mod.Lease(self.db, op)
        try:
            yield le
        except BaseException:
            refs = le.refs()
            le.release()
            try:
                self._undo(refs)
            except Exception:  # the original error matters more; gc() retries the cleanup
                pass
            raise
        le.release()

    def _undo(self, refs: set[tuple[str, str]]) -> None:
        self.layers.drop_unreferenced({k for kind, k in refs if kind == "layer"})
        referenced = {r[0] for r in self.db.query("SELECT digest FROM image_blobs")}
        referenced |= {r[0] for r in self.db.query("SELECT blob_digest FROM layers WHERE blob_digest IS NOT NULL")}
        protected, _ = leases_mod.protected(self.db)
        for kind, d in refs:
            if kind == "blob" and d not in referenced and (kind, d) not in protected:
                self.cs.delete(d, missing_ok=True)

    # -- reading images ----------------------------------------------------------------------------
    def _row(self, image_id: str):
        return self.db.query_one("SELECT * FROM images WHERE id = ?", (image_id,))

    def _image(self, row) -> Image:
        iid = row["id"]
        config = json.loads(self.cs.read_bytes(iid))
        manifest = json.loads(self.cs.read_bytes(row["manifest_digest"]))
        tags = [reference.familiar(r[0]) for r in self.db.query(
            "SELECT ref FROM image_tags WHERE image_id = ? ORDER BY added_at, ref", (iid,))]
        digests = [reference.familiar(r[0]) for r in self.db.query(
            "SELECT ref FROM image_digests WHERE image_id = ? ORDER BY ref", (iid,))]
        containers = self.db.query_one("SELECT COUNT(*) FROM container_fs WHERE image_id = ?", (iid,))[0]
        return Image(id=iid, config=config, manifest=manifest, manifest_digest=row["manifest_digest"],
                     repo_tags=tags, repo_digests=digests, size=row["size"], created=row["created"],
                     parent=row["parent"], top_chain=row["top_chain"], containers=containers)

    def _lookup(self, ref_or_id: str) -> tuple[Image, str | None]:
        """(image, the normalised tag it was found by, if any)."""
        if not isinstance(ref_or_id, str) or not ref_or_id.strip():
            raise InvalidArgument("image reference is empty")
        s = ref_or_id.strip()
        if reference.is_image_id(s):
            iid = s if s.startswith("sha256:") else "sha256:" + s
            row = self._row(iid)
            if row is None:
                raise NotFound(f"No such image: {s}")
            return self._image(row), None
        try:
            ref = reference.parse(s)
        except InvalidArgument:
            ref = None
        if ref is not None:
            if ref.digest is not None:
                row = self.db.query_one(
                    "SELECT i.* FROM image_digests d JOIN images i ON i.id = d.image_id WHERE d.ref = ?",
                    (f"{ref.name}@{ref.digest}",))
                if row is None:
                    row = self.db.query_one(
                        "SELECT i.* FROM images i JOIN image_tags t ON t.image_id = i.id "
                        "WHERE (i.manifest_digest = ? OR i.id = ?) AND t.ref LIKE ? ESCAPE '\\'",
                        (ref.digest, ref.digest, ref.name.replace("_", "\\_").replace("%", "\\%") + ":%"))
                if row is not None:
                    return self._image(row), None
            else:
                row = self.db.query_one(
                    "SELECT i.* FROM image_tags t JOIN images i ON i.id = t.image_id WHERE t.ref = ?", (str(ref),))
                if row is not None:
                    return self._image(row), str(ref)
        if reference.is_id_prefix(s):
            prefix = s if s.startswith("sha256:") else "sha256:" + s
            rows = self.db.query("SELECT * FROM images WHERE substr(id, 1, ?) = ? LIMIT 2", (len(prefix), prefix))
            if len(rows) > 1:
                raise InvalidArgument(f"image id prefix {s!r} is ambiguous: give more digits")
            if rows:
                return self._image(rows[0]), None
        if ref is None and not reference.is_id_prefix(s):
            reference.parse(s)  # raises the reference's own, precise error
        raise NotFound(f"No such image: {s}")

    def resolve_image(self, ref_or_id: str) -> Image:
        return self._lookup(ref_or_id)[0]

    def list_images(self, filters: dict | None = None) -> list[Image]:
        """Newest first. filters (docker's /images/json): dangling=true|false, label=k or k=v,
        before=<image>, since=<image>, reference=<glob> (on the familiar name[:tag]); values may be
        a string or a list (any of which matches)."""
        images = [self._image(r) for r in self.db.query("SELECT * FROM images ORDER BY added_at DESC, id")]
        if not filters:
            return images
        f = {k: ([v] if isinstance(v, str) else list(v)) for k, v in filters.items()}
        unknown = set(f) - {"dangling", "label", "before", "since", "reference"}
        if unknown:
            raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}")
        added = {r["id"]: r["added_at"] for r in self.db.query("SELECT id, added_at FROM images")}
        out = []
        for img in images:
            if "dangling" in f:
                want = {v.lower() for v in f["dangling"]}
                if not want <= {"true", "false", "1", "0"}:
                    raise InvalidArgument(f"invalid filter 'dangling={f['dangling'][0]}'")
                if (not img.repo_tags) != bool(want & {"true", "1"}):
                    continue
            if "label" in f and not all(_label_match(img.labels, e) for e in f["label"]):
                continue
            if "before" in f and not all(added[img.id] < added[self.resolve_image(b).id] for b in f["before"]):
                continue
            if "since" in f and not all(added[img.id] > added[self.resolve_image(b).id] for b in f["since"]):
                continue
            if "reference" in f and not any(_ref_match(img.repo_tags, pat) for pat in f["reference"]):
                continue
            out.append(img)
        return out

    def inspect_image(self, ref_or_id: str) -> dict:
        """Docker's ImageInspect shape (GET /images/{name}/json)."""
        img = self.resolve_image(ref_or_id)
        cfg = img.config
        hist = cfg.get("history") or []
        last_tag = self.db.query_one("SELECT MAX(added_at) FROM image_tags WHERE image_id = ?", (img.id,))[0]
        top = self.layers.get(img.top_chain) if img.top_chain else None
        out = {
            "Id": img.id, "RepoTags": img.repo_tags, "RepoDigests": img.repo_digests,
            "Parent": img.parent or "", "Comment": hist[-1].get("comment", "") if hist else "",
            "Created": cfg.get("created", ""), "DockerVersion": cfg.get("docker_version", ""),
            "Author": cfg.get("author", ""), "Config": cfg.get("config") or {},
            "Architecture": cfg.get("architecture", ""), "Os": cfg.get("os", ""), "Size": img.size,
            "GraphDriver": {"Name": self.driver_name, "Data": {"LayerID": top["driver_id"]} if top else {}},
            "RootFS": {"Type": "layers", "Layers": img.diff_ids},
            "Metadata": {"LastTagTime": datetime.datetime.fromtimestamp(last_tag, datetime.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ") if last_tag else "0001-01-01T00:00:00Z"},
        }
        if cfg.get("variant"):
            out["Variant"] = cfg["variant"]
        return out

    def history(self, ref: str) -> list[dict]:
        """`docker history`: newest first; size per layer-making step."""
        img = self.resolve_image(ref)
        chain = self.layers.chain(img.top_chain)
        hist = list(img.config.get("history") or [])
        if not hist:
            hist = [{"created": img.created or "", "created_by": ""} for _ in chain]
        # Which history entry is the top of which local parent image (commits): docker shows their ids.
        owners: dict[int, Image] = {len(hist) - 1: img}
        parent = img.parent
        while parent:
            row = self._row(parent)
            if row is None:
                break
            p = self._image(row)
            owners.setdefault(len(p.config.get("history") or []) - 1, p)
            parent = p.parent
        out = []
        li = 0
        for i, h in enumerate(hist):
            size = 0
            if not h.get("empty_layer"):
                size = chain[li]["size"] if li < len(chain) else 0
                li += 1
            owner = owners.get(i)
            out.append({
                "Id": owner.id if owner else "<missing>",
                "Created": _epoch(h.get("created")),
                "CreatedBy": h.get("created_by", ""),
                "Tags": owner.repo_tags if owner and owner.repo_tags else None,
                "Size": size,
                "Comment": h.get("comment", ""),
            })
        return out[::-1]

    # -- tags --------------------------------------------------------------------------------------
    @staticmethod
    def _tag_ref(ref: str) -> str:
        r = reference.parse(ref)
        if r.digest is not None:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {ref!r}")
        return str(r)

    def tag(self, image_id_or_ref: str, new_ref: str) -> None:
        target = self._tag_ref(new_ref)
        img = self.resolve_image(image_id_or_ref)
        with self.db.tx() as cur:
            cur.execute(
                "INSERT INTO image_tags(ref, image_id, added_at) VALUES (?, ?, ?) "
                "ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id, added_at = excluded.added_at",
                (target, img.id, time.time()))

    def untag(self, ref: str) -> None:
        target = self._tag_ref(ref)
        if self.db.execute("DELETE FROM image_tags WHERE ref = ?", (target,)) == 0:
            raise NotFound(f"No such image: {ref}")

    # -- registering images ------------------------------------------------------------------------
    def _register(self, p: PendingImage, lease: leases_mod.Lease, parent: str | None = None) -> Image:
        """Unpack the layers (if new) and record the image and its tags in one transaction."""
        if dg.parse(p.config_digest).algorithm != "sha256":
            raise Unsupported(f"{p.where}: config digest {p.config_digest} is not sha256")
        where = p.where or "image"
        config = oi.validate_config(
            oi.parse_json(self.cs.read_bytes(p.config_digest), f"{where} config"), f"{where} config")
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(p.layers):
            raise InvalidArgument(
                f"{where}: config has {len(diff_ids)} rootfs.diff_ids but the image has {len(p.layers)} layers")
        top = None
        for (blob, mt), diff_id in zip(p.layers, diff_ids, strict=True):
            top = self.layers.ensure(lease, top, diff_id, blob, mt)
        if p.manifest_digest:
            mdigest, mtype = p.manifest_digest, p.manifest_media_type or oi.OCI_MANIFEST
        else:
            manifest = {
                "schemaVersion": 2, "mediaType": oi.OCI_MANIFEST,
                "config": {"mediaType": oi.OCI_CONFIG, "digest": p.config_digest,
                           "size": self.cs.info(p.config_digest).size},
                "layers": [{"mediaType": mt, "digest": b, "size": self.cs.info(b).size} for b, mt in p.layers],
            }
            info = self.cs.write(oi.canonical_json(manifest))
            lease.add("blob", info.digest)
            mdigest, mtype = info.digest, oi.OCI_MANIFEST
        size = sum(r["size"] for r in self.layers.chain(top))
        crash.point("before-image-tx")
        iid = p.config_digest
        blobs = {mdigest, p.config_digest, *(b for b, _ in p.layers)}
        with self.db.tx() as cur:
            if cur.execute("SELECT 1 FROM images WHERE id = ?", (iid,)).fetchone() is None:
                cur.execute(
                    "INSERT INTO images(id, manifest_digest, manifest_media_type, top_chain, size, created,"
                    " parent, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (iid, mdigest, mtype, top, size, config.get("created"), parent, time.time()))
                LayerStore.acquire(cur, top)
            cur.executemany("INSERT OR IGNORE INTO image_blobs(image_id, digest) VALUES (?, ?)",
                            [(iid, b) for b in sorted(blobs)])
            for t in p.tags:
                cur.execute(
                    "INSERT INTO image_tags(ref, image_id, added_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id, added_at = excluded.added_at",
                    (t, iid, time.time()))
        crash.point("after-image-tx")
        return self._image(self._row(iid))

    def _register_all(self, pending: list[PendingImage], lease: leases_mod.Lease) -> list[str]:
        out = []
        for p in pending:
            img = self._register(p, lease)
            if p.tags:
                out.extend(reference.familiar(t) for t in p.tags)
            else:
                out.append(img.id)
        return out

    # -- load / import -----------------------------------------------------------------------------
    def load_archive(self, stream: BinaryIO, name: str | None = None, platform: dict | None = None) -> list[str]:
        """docker-archive or OCI-layout tar (plain or compressed). Returns loaded tags (familiar) or,
        for untagged images, ids. `name` gives a repository to bare OCI ref.name tags."""
        with self._op("load") as le:
            src = TarSource(stream, self.cs, on_blob=lambda d: le.add("blob", d))
            crash.point("load-blobs-written")
            return self._load_source(src, le, name, platform)

    def _load_source(self, src: Source, le: leases_mod.Lease, name: str | None, platform: dict | None) -> list[str]:
        if src.has("manifest.json"):
            pending = dockerarchive.read(src, self.cs)
        elif src.has("index.json") and src.has("oci-layout"):
            pending = ocilayout.read(src, self.cs, name, platform)
        else:
            raise InvalidArgument(
                "archive is neither a docker-archive (no manifest.json) nor an OCI layout (no index.json and oci-layout)")
        if not pending:
            raise InvalidArgument("archive holds no image")
        return self._register_all(pending, le)

    def import_oci_layout(self, src: str | BinaryIO, name: str | None = None,
                          platform: dict | None = None) -> list[str]:
        """An OCI layout directory, or a tar of one (path or stream)."""
        if isinstance(src, str) and os.path.isdir(src):
            with self._op("import-oci") as le:
                return self._load_source(DirSource(src, self.cs, on_blob=lambda d: le.add("blob", d)),
                                         le, name, platform)
        if isinstance(src, str):
            try:
                with open(src, "rb") as f:
                    return self.load_archive(f, name, platform)
            except FileNotFoundError:
                raise NotFound(f"OCI layout {src!r} does not exist")
        return self.load_archive(src, name, platform)

    def import_rootfs_tar(self, stream: BinaryIO, ref: str | None = None, changes: Iterable[str] = (),
                          message: str = "", platform: dict | None = None) -> Image:
        """`docker import`: one layer from a root filesystem tar (plain, gzip, zstd, bzip2 or xz)."""
        tag = self._tag_ref(ref) if ref else None
        cc: dict = {}
        apply_changes(cc, changes)  # bad changes fail before anything is written
        plat = oi.normalize_platform(platform) if platform else oi.host_platform()
        with self._op("import") as le:
            info = self.cs.write(stream)
            le.add("blob", info.digest)
            blob = info.digest
            with self.cs.open(blob) as f:
                plain, comp = decompress(f)
                if comp in ("bzip2", "xz"):  # not a layer media type: store it uncompressed
                    info = self.cs.write(plain)
                    le.add("blob", info.digest)
                    blob, comp = info.digest, "none"
                    diff_id = blob
                elif comp == "none":
                    diff_id = blob
                else:
                    diff_id, _ = dg.from_stream(plain)
            mt = oi.layer_media_type("" if comp == "none" else comp)
            now = _now()
            config = {
                "architecture": plat["architecture"], "os": plat["os"], "created": now, "config": cc,
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created": now, "comment": message or "Imported from -"}],
            }
            if plat.get("variant"):
                config["variant"] = plat["variant"]
            cinfo = self.cs.write(oi.canonical_json(config))
            le.add("blob", cinfo.digest)
            return self._register(PendingImage(cinfo.digest, [(blob, mt)], tags=[tag] if tag else [],
                                               where="import"), le)

    def lease(self, op: str):
        """A lease for a caller's own multi-step operation (a pull, a build): blobs it writes and
        lists with lease.add("blob", digest) are safe from gc until it ends. A context manager."""
        return leases_mod.lease(self.db, op)

    def register_manifest(self, manifest_digest: str, tags: Iterable[str] = (), repo_digests: Iterable[str] = (),
                          lease: leases_mod.Lease | None = None, platform: dict | None = None) -> Image:
        """Record an image whose manifest (or index: the platform's entry is taken), config and layer
        blobs are already in the content store, e.g. after a pull. Tags and repo digests
        (`name@sha256:...`) are normalised."""
        tags = [self._tag_ref(t) for t in tags]
        digests = []
        for d in repo_digests:
            r = reference.parse(d)
            if r.digest is None:
                raise InvalidArgument(f"repo digest {d!r} has no @digest")
            digests.append(f"{r.name}@{r.digest}")
        if lease is None:
            with self.lease("register") as le:
                return self.register_manifest(manifest_digest, tags, digests, le, platform)
        lease.add("blob", manifest_digest)
        doc = oi.parse_json(self.cs.read_bytes(manifest_digest), f"manifest {manifest_digest}")
        mt = doc.get("mediaType") if isinstance(doc, dict) else None
        for _ in range(8):
            if not (isinstance(doc, dict) and ("manifests" in doc or mt in oi.INDEX_TYPES)):
                break
            desc = oi.select_manifest(oi.validate_index(doc, f"index {manifest_digest}"), platform)
            manifest_digest, mt = desc["digest"], desc["mediaType"]
            lease.add("blob", manifest_digest)
            doc = oi.parse_json(self.cs.read_bytes(manifest_digest), f"manifest {manifest_digest}")
        m = oi.validate_manifest(doc, f"manifest {manifest_digest}")
        for j, ld in enumerate(m["layers"]):
            if ld["mediaType"] not in oi.LAYER_TYPES:
                raise Unsupported(f"manifest {manifest_digest}.layers[{j}]: {ld['mediaType']!r} is not a layer type")
            if not self.cs.exists(ld["digest"]):
                raise NotFound(f"manifest {manifest_digest}.layers[{j}]: blob {ld['digest']} is not in the store")
        if not self.cs.exists(m["config"]["digest"]):
            raise NotFound(f"manifest {manifest_digest}: config blob {m['config']['digest']} is not in the store")
        img = self._register(PendingImage(m["config"]["digest"], [(d["digest"], d["mediaType"]) for d in m["layers"]],
                                          manifest_digest, m.get("mediaType") or mt or oi.OCI_MANIFEST, tags,
                                          where=f"manifest {manifest_digest}"), lease)
        if digests:
            with self.db.tx() as cur:
                cur.executemany(
                    "INSERT INTO image_digests(ref, image_id) VALUES (?, ?) "
                    "ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id", [(d, img.id) for d in digests])
            img = self._image(self._row(img.id))
        return img

    # -- save / export -----------------------------------------------------------------------------
    def _select(self, refs: Iterable[str]) -> list[tuple[Image, list[str]]]:
        """Images to save with the tags (normalised) to record: a tag names itself, a repository
        without tag all its tags, an id none (as docker save)."""
        order: list[str] = []
        chosen: dict[str, tuple[Image, list[str]]] = {}
        refs = list(refs)
        if not refs:
            raise InvalidArgument("no image given to save")
        for s in refs:
            tags: list[str] = []
            r = None
            if not reference.is_image_id(s):
                try:
                    r = reference.parse(s, default_tag=False)
                except InvalidArgument:
                    r = None
            if r is not None and r.tag is None and r.digest is None:
                rows = self.db.query("SELECT ref, image_id FROM image_tags WHERE ref LIKE ? ESCAPE '\\' ORDER BY ref",
                                     (r.name.replace("_", "\\_").replace("%", "\\%") + ":%",))
                rows = [x for x in rows if x["ref"].rsplit(":", 1)[0] == r.name]
                if rows:
                    for x in rows:
                        img = self._image(self._row(x["image_id"]))
                        if img.id not in chosen:
                            chosen[img.id] = (img, [])
                            order.append(img.id)
                        if x["ref"] not in chosen[img.id][1]:
                            chosen[img.id][1].append(x["ref"])
                    continue
            img, by_tag = self._lookup(s)
            if by_tag:
                tags.append(by_tag)
            if img.id not in chosen:
                chosen[img.id] = (img, [])
                order.append(img.id)
            for t in tags:
                if t not in chosen[img.id][1]:
                    chosen[img.id][1].append(t)
        return [chosen[i] for i in order]

    def _open_layer_tar(self, chain_id: str) -> tuple[BinaryIO, int]:
        """The uncompressed layer tar (verified against the diff id) and its size."""
        row = self.layers.need(chain_id)
        blob = row["blob_digest"]
        if blob == row["diff_id"]:
            return self.cs.open(blob), self.cs.info(blob).size
        spool = self._spool(".tar")
        h = hashlib.sha256()
        with self.cs.open(blob) as f:
            plain, _ = decompress(f)
            while chunk := plain.read(1 << 20):
                h.update(chunk)
                spool.write(chunk)
        if "sha256:" + h.hexdigest() != row["diff_id"]:
            spool.close()
            raise InvalidArgument(f"layer {chain_id}: blob {blob} does not decompress to diff id {row['diff_id']}")
        spool.flush()
        size = spool.tell()
        spool.seek(0)
        return spool, size

    def save_archive(self, refs: Iterable[str], out_stream: BinaryIO) -> None:
        """docker-archive (`docker save`) of one or more images and their tags."""
        items = []
        for img, tags in self._select(refs):
            chain = self.layers.chain(img.top_chain)
            items.append((img.id, self.cs.read_bytes(img.id), [(r["chain_id"], r["diff_id"]) for r in chain],
                          [reference.familiar(t) for t in tags]))
        dockerarchive.write(out_stream, items, self._open_layer_tar)

    def export_oci_layout(self, refs: Iterable[str], dest: str | BinaryIO) -> None:
        """An OCI layout: a directory (str path not ending in .tar), a .tar path, or a tar stream."""
        sel = self._select(refs)
        blobs: list[str] = []
        entries = []
        for img, tags in sel:
            for d in [img.manifest_digest, img.id, *(x["digest"] for x in img.manifest.get("layers", []))]:
                if d not in blobs:
                    blobs.append(d)
            mrow = self._row(img.id)
            entries.append((img.manifest_digest, mrow["manifest_media_type"],
                            self.cs.info(img.manifest_digest).size, tags))
        index = ocilayout.index_entries(entries)
        if isinstance(dest, str) and not dest.endswith(".tar"):
            ocilayout.write_dir(dest, blobs, index, self.cs.open)
        elif isinstance(dest, str):
            tmp = f"{dest}.tmp-{os.getpid()}"
            try:
                with open(tmp, "wb") as f:
                    ocilayout.write_tar(f, blobs, index, self.cs.open, lambda d: self.cs.info(d).size)
                    f.flush()
                    os.fsync(f.fileno())
                os.rename(tmp, dest)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            ocilayout.write_tar(dest, blobs, index, self.cs.open, lambda d: self.cs.info(d).size)

    # -- removal -----------------------------------------------------------------------------------
    def remove_image(self, ref_or_id: str, force: bool = False) -> list[dict]:
        """`docker rmi`: untag by tag when other tags remain; otherwise delete the image and the
        layers only it used. Returns [{"Untagged": ...}, {"Deleted": ...}]."""
        return self._remove_image(ref_or_id, force)[0]

    def _remove_image(self, ref_or_id: str, force: bool = False) -> tuple[list[dict], int]:
        img, by_tag = self._lookup(ref_or_id)
        tags = [str(reference.parse(t)) for t in img.repo_tags]
        users = [r[0] for r in self.db.query("SELECT container_id FROM container_fs WHERE image_id = ?", (img.id,))]
        if by_tag and len(tags) > 1:
            self.untag(by_tag)
            return [{"Untagged": reference.familiar(by_tag)}], 0
        if not by_tag and len(tags) > 1 and not force:
            raise Conflict(f"conflict: unable to delete {img.short_id} (must be forced) - image is referenced "
                           f"in multiple repositories")
        if users and not force:
            what = f"repository reference {reference.familiar(by_tag)!r}" if by_tag else img.short_id
            raise Conflict(f"conflict: unable to delete {what} (must be forced) - image is being used by "
                           f"container {users[0][:12]}")
        children = self.db.query("SELECT id FROM images WHERE parent = ?", (img.id,))
        if children:
            if by_tag or force:
                for t in tags:
                    self.untag(t)
                return [{"Untagged": reference.familiar(t)} for t in tags], 0
            raise Conflict(f"conflict: unable to delete {img.short_id} - image has dependent child images")
        before = {r[0] for r in self.db.query("SELECT chain_id FROM layers")}
        with self.db.tx() as cur:
            cur.execute("DELETE FROM image_tags WHERE image_id = ?", (img.id,))
            cur.execute("DELETE FROM images WHERE id = ?", (img.id,))
            cur.execute("UPDATE images SET parent = NULL WHERE parent = ?", (img.id,))
            self.layers.release(cur, img.top_chain)
        crash.point("remove-after-tx")
        after = {r[0] for r in self.db.query("SELECT chain_id FROM layers")}
        freed = self.layers.empty_trash()
        freed += self._sweep_blobs()
        return ([{"Untagged": reference.familiar(t)} for t in tags] + [{"Deleted": img.id}]
                + [{"Deleted": c} for c in sorted(before - after)]), freed

    def _sweep_blobs(self) -> int:
        """Delete blobs no image or layer references and no live lease protects."""
        referenced = {r[0] for r in self.db.query("SELECT digest FROM image_blobs")}
        referenced |= {r[0] for r in self.db.query("SELECT blob_digest FROM layers WHERE blob_digest IS NOT NULL")}
        protected, oldest = leases_mod.protected(self.db)
        freed = 0
        for d in list(self.cs.list()):
            if d in referenced or ("blob", d) in protected:
                continue
            try:
                st = os.stat(self.cs.path(d))
            except (NotFound, FileNotFoundError):
                continue
            if oldest is not None and st.st_mtime >= oldest - 2:
                continue  # may belong to an operation that has not leased it yet
            self.cs.delete(d, missing_ok=True)
            freed += st.st_size
        return freed

    def gc(self) -> int:
        """Collect everything unreferenced: dead operations' leftovers, layers, blobs. Bytes freed."""
        _, stale = leases_mod.split_live(self.db)
        if stale:
            with self.db.tx() as cur:
                cur.executemany("DELETE FROM leases WHERE id = ?", [(s,) for s in stale])
        freed = self.layers.gc()
        freed += self._sweep_blobs()
        self.cs.clean_ingests(older_than=24 * 3600)
        return freed

    def prune_images(self, dangling_only: bool = True) -> dict:
        """`docker image prune`: dangling (untagged) images, or with dangling_only=False every image
        no container uses; then unreferenced layers and blobs."""
        deleted: list[dict] = []
        freed = 0
        while True:
            rows = self.db.query(
                "SELECT i.id FROM images i WHERE NOT EXISTS (SELECT 1 FROM container_fs c WHERE c.image_id = i.id)"
                " AND NOT EXISTS (SELECT 1 FROM images k WHERE k.parent = i.id)"
                + (" AND NOT EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = i.id)" if dangling_only else ""))
            if not rows:
                break
            for r in rows:
                res, n = self._remove_image(r[0], force=True)
                deleted.extend(res)
                freed += n
        freed += self.gc()
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": freed}

    # -- disk usage --------------------------------------------------------------------------------
    def disk_usage(self) -> dict:
        """`docker system df -v`: images (size, shared, unique, containers), layers, containers, volumes."""
        layers = {r["chain_id"]: r for r in self.db.query("SELECT * FROM layers")}
        images = self.list_images()
        uses: dict[str, int] = {}
        chains: dict[str, list[str]] = {}
        for img in images:
            c, top = [], img.top_chain
            while top and top in layers:
                c.append(top)
                top = layers[top]["parent"]
            chains[img.id] = c
            for x in c:
                uses[x] = uses.get(x, 0) + 1
        out_images = []
        for img in images:
            size = sum(layers[x]["size"] for x in chains[img.id])
            shared = sum(layers[x]["size"] for x in chains[img.id] if uses[x] > 1)
            out_images.append({"Id": img.id, "RepoTags": img.repo_tags, "Created": _epoch(img.created),
                               "Size": size, "SharedSize": shared, "UniqueSize": size - shared,
                               "Containers": img.containers, "Layers": len(chains[img.id])})
        containers = []
        for r in self.db.query("SELECT * FROM container_fs ORDER BY created_at"):
            try:
                rw = self.driver.size(r["driver_id"])
            except NotFound:
                rw = 0
            containers.append({"Id": r["container_id"], "ImageID": r["image_id"], "SizeRw": rw})
        volumes = []
        try:
            vols = self.volumes.list()
        except Exception:  # volumes are reported best-effort: df must work on a store without them
            vols = []
        for v in vols:
            usage = getattr(self.volumes, "usage", None)
            vsize = usage(v.name) if usage else _tree_size(v.mountpoint)
            volumes.append({"Name": v.name, "Mountpoint": v.mountpoint,
                            "UsageData": {"Size": vsize, "RefCount": len(self.volumes.users(v.name))}})
        return {
            "LayersSize": sum(r["size"] for r in layers.values()),
            "Images": out_images,
            "Containers": containers,
            "Volumes": volumes,
            "Layers": [{"ChainID": c, "DiffID": r["diff_id"], "Size": r["size"], "RefCount": r["refcount"],
                        "DriverID": r["driver_id"], "Parent": r["parent"]} for c, r in layers.items()],
            "BlobsSize": sum(self.cs.info(d).size for d in self.cs.list()),
            "BuildCache": [],
        }

    # -- container filesystems ---------------------------------------------------------------------
    def _cfs(self, container_id: str):
        row = self.db.query_one("SELECT * FROM container_fs WHERE container_id = ?", (container_id,))
        if row is None:
            raise NotFound(f"no filesystem for container {container_id}")
        return row

    def _parent_did(self, row) -> str | None:
        return driver_id_for(row["chain_id"]) if row["chain_id"] else None

    def create_container_fs(self, container_id: str, image_id: str) -> None:
        img = self.resolve_image(image_id)
        if self.db.query_one("SELECT 1 FROM container_fs WHERE container_id = ?", (container_id,)):
            raise AlreadyExists(f"container {container_id} already has a filesystem")
        with leases_mod.lease(self.db, "container") as le:
            le.add("driver", container_id)
            if img.top_chain:
                le.add("layer", img.top_chain)
            parent = self.layers.need(img.top_chain)["driver_id"] if img.top_chain else None
            if self.driver.exists(container_id):  # a crashed earlier attempt's layer, never recorded
                self.driver.remove(container_id)
            self.driver.create_rw(container_id, parent)
            crash.point("container-fs-created")
            try:
                with self.db.tx() as cur:
                    cur.execute("INSERT INTO container_fs(container_id, image_id, chain_id, driver_id, created_at)"
                                " VALUES (?, ?, ?, ?, ?)", (container_id, img.id, img.top_chain, container_id,
                                                            time.time()))
                    LayerStore.acquire(cur, img.top_chain)
            except BaseException:
                self.driver.remove(container_id)
                raise

    def mount_container_fs(self, container_id: str) -> str:
        return self.driver.get(self._cfs(container_id)["driver_id"])

    def unmount_container_fs(self, container_id: str) -> None:
        self.driver.put(self._cfs(container_id)["driver_id"])

    def remove_container_fs(self, container_id: str) -> None:
        row = self._cfs(container_id)
        did = row["driver_id"]
        mounted = getattr(self.driver, "mounted", None)
        if mounted is not None and self.driver.exists(did):
            for _ in range(mounted(did)):
                self.driver.put(did)
        with self.db.tx() as cur:
            cur.execute("DELETE FROM container_fs WHERE container_id = ?", (container_id,))
            cur.execute("INSERT INTO driver_trash(driver_id) VALUES (?)", (did,))
            self.layers.release(cur, row["chain_id"])
        self.layers.empty_trash()

    def container_changes(self, container_id: str) -> list[tuple[str, str]]:
        row = self._cfs(container_id)
        return self.driver.changes(row["driver_id"], self._parent_did(row))

    def export_container_fs(self, container_id: str, out_stream: BinaryIO) -> None:
        """`docker export`: the merged filesystem as one tar."""
        from berth.layers import tar_directory

        did = self._cfs(container_id)["driver_id"]
        root = self.driver.get(did)
        try:
            tar_directory(root, out_stream)
        finally:
            self.driver.put(did)

    def container_fs_size(self, container_id: str) -> int:
        return self.driver.size(self._cfs(container_id)["driver_id"])

    def commit_container(self, container_id: str, config: dict | None = None, ref: str | None = None,
                         comment: str = "", author: str = "", changes: Iterable[str] = ()) -> Image:
        """`docker commit`: the container's changes become a gzip layer on top of its image."""
        row = self._cfs(container_id)
        tag = self._tag_ref(ref) if ref else None
        base_row = self._row(row["image_id"])
        base = self._image(base_row) if base_row else None
        chain = self.layers.chain(row["chain_id"])
        if base is not None:
            new = copy.deepcopy(base.config)
        else:  # the image was force-removed: rebuild what its layers say
            plat = oi.host_platform()
            new = {"architecture": plat["architecture"], "os": plat["os"], "config": {},
                   "rootfs": {"type": "layers", "diff_ids": [r["diff_id"] for r in chain]}}
        cc = dict(new.get("config") or {})
        for k, v in (config or {}).items():
            if k in IMAGE_CONFIG_KEYS and v is not None:
                cc[k] = copy.deepcopy(v)
        apply_changes(cc, changes)  # validated before anything is written
        with self._op("commit") as le:
            with self._spool(".tar") as spool:
                self.driver.diff(row["driver_id"], self._parent_did(row), spool)
                spool.flush()
                spool.seek(0)
                diff_id, _ = dg.from_stream(spool)
                crash.point("commit-diffed")
                layers = [(r["blob_digest"], r["blob_media_type"]) for r in chain]
                spool.seek(0)
                empty = diff_id == oi.EMPTY_LAYER_DIFF_ID or _tar_is_empty(spool)
                if not empty:
                    spool.seek(0)
                    info = self.cs.write(compress(spool, "gzip"))
                    le.add("blob", info.digest)
                    layers.append((info.digest, oi.OCI_LAYER_GZIP))
            crash.point("commit-blob-written")
            now = _now()
            new["config"] = cc
            new["created"] = now
            if author:
                new["author"] = author
            else:
                new.pop("author", None)
            hist = list(new.get("history") or [])
            if not hist and chain:
                hist = [{"created": base.created if base else now} for _ in chain]
            entry: dict = {"created": now}
            if author:
                entry["author"] = author
            if comment:
                entry["comment"] = comment
            if empty:
                entry["empty_layer"] = True
            else:
                new["rootfs"] = {"type": "layers", "diff_ids": [*new["rootfs"]["diff_ids"], diff_id]}
            new["history"] = [*hist, entry]
            cinfo = self.cs.write(oi.canonical_json(new))
            le.add("blob", cinfo.digest)
            crash.point("commit-config-written")
            return self._register(
                PendingImage(cinfo.digest, layers, tags=[tag] if tag else [], where=f"commit of {container_id}"),
                le, parent=base.id if base else None)

    # -- misc --------------------------------------------------------------------------------------
    def layer_media_type(self, blob: str) -> str:
        return layer_media_type_of(self.cs, blob)


def _label_match(labels: dict, expr: str) -> bool:
    key, eq, val = expr.partition("=")
    if key.endswith("!"):
        return labels.get(key[:-1]) != val
    return key in labels and (not eq or labels[key] == val)


def _ref_match(tags: list[str], pattern: str) -> bool:
    """docker's reference filter: a glob on name:tag, or on the name alone when no tag is given."""
    for t in tags:
        name, _, tag = t.rpartition(":")
        if "/" in tag:  # a port, not a tag
            name, tag = t, ""
        if fnmatch.fnmatchcase(t, pattern) or (":" not in pattern.rsplit("/", 1)[-1]
                                                and fnmatch.fnmatchcase(name, pattern)):
            return True
    return False


def _tar_is_empty(f: BinaryIO) -> bool:
    try:
        with tarfile.open(fileobj=f, mode="r|") as tf:
            return tf.next() is None
    except tarfile.TarError:
        return False


def _tree_size(root: str) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512 if st.st_blocks else st.st_size
    return total
