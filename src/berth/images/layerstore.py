"""Layer records (chain id -> driver layer, diff id, size, parent, refcount) over a storage driver.

Order that makes a crash harmless: the driver creates a layer under a temporary name and publishes it
only complete (apply_diff); only then is the row written, in one transaction, while a lease row marks
the chain id as in flight. Dropping a layer deletes its row and queues the driver layer in
driver_trash in the same transaction; the trash is emptied afterwards and again at the next open.
"""

from __future__ import annotations

import sqlite3
import time

from berth.content import ContentStore
from berth.errors import Conflict, DataCorruption, NotFound
from berth.images import crash
from berth.images import leases as leases_mod
from berth.metadata import Database
from berth.oci.image import chain_ids

WAIT_FOR_OTHER = 300.0  # seconds to wait for another process unpacking the same layer


def driver_id_for(chain_id: str) -> str:
    return chain_id.split(":", 1)[1]


class LayerStore:
    def __init__(self, db: Database, driver, cs: ContentStore) -> None:
        self.db = db
        self.driver = driver
        self.cs = cs

    def get(self, chain_id: str) -> sqlite3.Row | None:
        return self.db.query_one("SELECT * FROM layers WHERE chain_id = ?", (chain_id,))

    def need(self, chain_id: str) -> sqlite3.Row:
        row = self.get(chain_id)
        if row is None:
            raise NotFound(f"layer {chain_id} not found")
        return row

    def chain(self, top: str | None) -> list[sqlite3.Row]:
        """Layers from the base up to `top`."""
        out = []
        while top:
            row = self.need(top)
            out.append(row)
            top = row["parent"]
        return out[::-1]

    def ensure(self, lease: leases_mod.Lease, parent: str | None, diff_id: str, blob: str,
               media_type: str) -> str:
        """The chain id for diff_id on top of parent, unpacking `blob` if that layer is new."""
        chain = chain_ids([parent, diff_id])[1] if parent else diff_id
        lease.add("layer", chain)  # from here gc and concurrent removals leave it alone
        if self.get(chain) is not None:
            return chain
        did = driver_id_for(chain)
        parent_did = self.need(parent)["driver_id"] if parent else None
        deadline = time.monotonic() + WAIT_FOR_OTHER
        while True:
            if self.get(chain) is not None:
                return chain  # another operation finished it meanwhile
            if self._claim(chain, lease):
                break
            if time.monotonic() > deadline:
                raise Conflict(f"layer {chain} is being unpacked by another operation; retry later")
            time.sleep(0.1)
        if self.get(chain) is not None:
            return chain
        if self.driver.exists(did):
            self.driver.remove(did)  # a dead operation's complete but unrecorded layer
        with self.cs.open(blob) as f:
            applied = self.driver.apply_diff(did, parent_did, f)
        crash.point("layer-applied")
        if applied.diff_id != diff_id:
            self.driver.remove(did)
            raise DataCorruption(
                f"layer blob {blob}: unpacked diff id {applied.diff_id} does not match the config's {diff_id}"
            )
        with self.db.tx() as cur:
            cur.execute(
                "INSERT INTO layers(chain_id, parent, diff_id, driver_id, size, blob_digest, blob_media_type,"
                " refcount, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (chain, parent, diff_id, did, applied.size, blob, media_type, time.time()),
            )
            if parent:
                cur.execute("UPDATE layers SET refcount = refcount + 1 WHERE chain_id = ?", (parent,))
        return chain

    def _claim(self, chain: str, lease: leases_mod.Lease) -> bool:
        """Become the one operation unpacking `chain` (others wait for its row). One transaction:
        BEGIN IMMEDIATE serialises claimers across processes."""
        live, _ = leases_mod.split_live(self.db)
        with self.db.tx() as cur:
            holders = [r[0] for r in cur.execute(
                "SELECT lease_id FROM lease_refs WHERE kind = 'unpack' AND key = ? AND lease_id != ?",
                (chain, lease.id))]
            if any(h in live for h in holders):
                return False
            cur.execute("INSERT OR IGNORE INTO lease_refs(lease_id, kind, key) VALUES (?, 'unpack', ?)",
                        (lease.id, chain))
            return True

    # -- references --------------------------------------------------------------------------------
    @staticmethod
    def acquire(cur: sqlite3.Cursor, chain_id: str | None) -> None:
        if chain_id is None:
            return
        n = cur.execute("UPDATE layers SET refcount = refcount + 1 WHERE chain_id = ?", (chain_id,)).rowcount
        if n != 1:
            raise Conflict(f"layer {chain_id} disappeared (removed concurrently); retry")

    def release(self, cur: sqlite3.Cursor, chain_id: str | None) -> None:
        """Drop one reference; layers left unreferenced (and not leased) are deleted down the chain."""
        protected, _ = leases_mod.protected(self.db)
        while chain_id:
            cur.execute("UPDATE layers SET refcount = refcount - 1 WHERE chain_id = ?", (chain_id,))
            row = cur.execute("SELECT * FROM layers WHERE chain_id = ?", (chain_id,)).fetchone()
            if row is None or row["refcount"] > 0 or ("layer", chain_id) in protected:
                return
            self._delete_row(cur, row)
            chain_id = row["parent"]

    @staticmethod
    def _delete_row(cur: sqlite3.Cursor, row: sqlite3.Row) -> None:
        cur.execute("DELETE FROM layers WHERE chain_id = ?", (row["chain_id"],))
        cur.execute("INSERT INTO driver_trash(driver_id) VALUES (?)", (row["driver_id"],))

    def empty_trash(self) -> int:
        """Delete queued driver layers (children were queued first). Returns bytes freed (approx.)."""
        freed = 0
        for row in self.db.query("SELECT seq, driver_id FROM driver_trash ORDER BY seq"):
            did = row["driver_id"]
            busy = self.db.query_one(
                "SELECT 1 FROM layers WHERE driver_id = ? UNION SELECT 1 FROM container_fs WHERE driver_id = ?",
                (did, did))
            if not busy and self.driver.exists(did):
                try:
                    size = self.driver.size(did)
                    self.driver.remove(did)
                    freed += size
                except Conflict:
                    continue  # still mounted or has children: retried at the next gc
            self.db.execute("DELETE FROM driver_trash WHERE seq = ?", (row["seq"],))
        return freed

    def drop_unreferenced(self, chains: set[str]) -> int:
        """Delete those of `chains` that nothing references (a failed operation's new layers)."""
        protected, _ = leases_mod.protected(self.db)
        with self.db.tx() as cur:
            while True:
                rows = [r for c in chains
                        if (r := cur.execute("SELECT * FROM layers WHERE chain_id = ?", (c,)).fetchone())
                        and r["refcount"] <= 0 and ("layer", c) not in protected]
                if not rows:
                    break
                for r in rows:
                    self._delete_row(cur, r)
                    if r["parent"]:
                        cur.execute("UPDATE layers SET refcount = refcount - 1 WHERE chain_id = ?", (r["parent"],))
        return self.empty_trash()

    def gc(self) -> int:
        """Delete unreferenced layer rows, then driver layers that no row, container or live lease
        accounts for (a crashed operation's leftovers). Returns bytes freed."""
        protected, _ = leases_mod.protected(self.db)
        with self.db.tx() as cur:
            while True:
                rows = [r for r in cur.execute("SELECT * FROM layers WHERE refcount <= 0").fetchall()
                        if ("layer", r["chain_id"]) not in protected]
                if not rows:
                    break
                for r in rows:
                    self._delete_row(cur, r)
                    if r["parent"]:
                        cur.execute("UPDATE layers SET refcount = refcount - 1 WHERE chain_id = ?", (r["parent"],))
        freed = self.empty_trash()
        known = {r[0] for r in self.db.query("SELECT driver_id FROM layers UNION SELECT driver_id FROM container_fs")}
        keep = known | {k for kind, k in protected if kind == "driver"} | {
            driver_id_for(k) for kind, k in protected if kind == "layer"}
        orphans = [d for d in self.driver.list() if d not in keep]
        progress = True
        while orphans and progress:
            progress = False
            for d in list(orphans):
                try:
                    size = self.driver.size(d)
                    self.driver.remove(d)
                except Conflict:
                    continue  # has children among the orphans: next round
                except NotFound:
                    pass
                else:
                    freed += size
                orphans.remove(d)
                progress = True
        return freed
