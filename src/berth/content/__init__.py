"""Content-addressed blob store: blobs/<algo>/<hex>, atomic and resumable ingest, verify on read."""

from berth.content.store import ContentStore, Info, IngestStatus, VerifyingReader, Writer

__all__ = ["ContentStore", "Info", "IngestStatus", "VerifyingReader", "Writer"]
