"""The images component's tables in the shared metadata db (migrations are append-only)."""

MIGRATIONS: list[str] = [
    """
    CREATE TABLE images (
        id TEXT PRIMARY KEY,                 -- sha256:<hex of the config blob>
        manifest_digest TEXT NOT NULL,       -- manifest blob in the content store
        manifest_media_type TEXT NOT NULL,
        top_chain TEXT,                      -- chain id of the top layer; NULL for an image without layers
        size INTEGER NOT NULL,               -- uncompressed size of all layers
        created TEXT,                        -- from the config
        parent TEXT,                         -- local parent image (commit), like docker's Parent
        added_at REAL NOT NULL
    );
    CREATE TABLE image_tags (
        ref TEXT PRIMARY KEY,                -- normalised: docker.io/library/busybox:latest
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        added_at REAL NOT NULL
    );
    CREATE INDEX image_tags_image ON image_tags(image_id);
    CREATE TABLE image_digests (
        ref TEXT PRIMARY KEY,                -- name@sha256:...
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
    );
    CREATE TABLE image_blobs (               -- every blob an image needs (manifest, config, layers)
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        digest TEXT NOT NULL,
        PRIMARY KEY (image_id, digest)
    );
    CREATE INDEX image_blobs_digest ON image_blobs(digest);
    CREATE TABLE layers (
        chain_id TEXT PRIMARY KEY,
        parent TEXT REFERENCES layers(chain_id),
        diff_id TEXT NOT NULL,
        driver_id TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,               -- uncompressed content of this layer alone
        blob_digest TEXT,                    -- a blob this layer was unpacked from
        blob_media_type TEXT,
        refcount INTEGER NOT NULL DEFAULT 0, -- images on top + child layers + container filesystems
        created_at REAL NOT NULL
    );
    CREATE TABLE container_fs (
        container_id TEXT PRIMARY KEY,
        image_id TEXT NOT NULL,
        chain_id TEXT REFERENCES layers(chain_id),
        driver_id TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL
    );
    CREATE TABLE leases (                    -- in-flight operations: what they create is not garbage
        id TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        start_time TEXT NOT NULL,            -- /proc/<pid>/stat starttime: pid reuse is not liveness
        op TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE lease_refs (
        lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,                  -- 'layer' (chain id), 'driver' (driver id), 'blob' (digest)
        key TEXT NOT NULL,
        PRIMARY KEY (lease_id, kind, key)
    );
    CREATE TABLE driver_trash (              -- driver layers to delete once metadata let go of them
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        driver_id TEXT NOT NULL
    );
    CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
]
