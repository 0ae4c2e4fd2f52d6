"""What the store hands out: an image record (plain data)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Image:
    id: str                              # sha256:<hex of the config blob>
    config: dict
    manifest: dict
    manifest_digest: str
    repo_tags: list[str] = field(default_factory=list)      # familiar form: busybox:latest
    repo_digests: list[str] = field(default_factory=list)
    size: int = 0
    created: str | None = None
    parent: str | None = None
    top_chain: str | None = None
    containers: int = 0

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]

    @property
    def labels(self) -> dict:
        return dict((self.config.get("config") or {}).get("Labels") or {})

    @property
    def platform(self) -> dict:
        p = {"os": self.config.get("os", ""), "architecture": self.config.get("architecture", "")}
        if self.config.get("variant"):
            p["variant"] = self.config["variant"]
        return p

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids", []))
