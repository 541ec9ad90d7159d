"""What a cluster keeps between runs, under `controller.state_dir/<cluster>/`.

    <cluster>/controller_ed25519[.pub]   the controller's SSH key the nodes trust (unless the inventory names one)
    <cluster>/secrets.yml                the generated pvc-ansible secrets: made once, mode 0600, never remade
    <cluster>/installed.json             every node's latest install result (address, host keys, disk, time, run)
    <cluster>/<run id>/                  one directory per deploy run

Every run (deploy, retry, render, ISO build) of one cluster reads the same state, so a deploy of
`--only hv3` after hv1 and hv2 renders all three with the secrets the cluster already has. Each file
is replaced atomically (a temporary file, then `os.replace`), under a lock that serialises writers in
this process (threads) and across processes (flock), so a read never sees half a file.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.keys import ssh_key_pair
from inventory.model import Cluster
from inventory.secrets import dump_secrets, load_or_generate, parse_secrets

_GUARD = threading.Lock()
_LOCKS: dict[Path, threading.Lock] = {}


@dataclass(frozen=True)
class InstallResult:
    """What a deploy learned about one installed node."""

    address: str
    host_keys: tuple[str, ...] = field(default=())  # OpenSSH public key lines
    disk: str | None = None  # the disk the installer chose (its stable /dev/disk/by-id path)
    installed_at: float | None = None  # seconds since the epoch
    run_id: str | None = None  # the run directory's name

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"host_keys": list(self.host_keys)}

    @classmethod
    def from_json(cls, data: Any) -> InstallResult:
        """Raises KeyError, TypeError or ValueError on a malformed entry."""
        if not isinstance(data, dict) or not isinstance(data["address"], str):
            raise TypeError("not an install result")
        keys = data.get("host_keys", [])
        if not isinstance(keys, list):
            raise TypeError("host_keys is not a list")
        at = data.get("installed_at")
        return cls(data["address"], tuple(str(k) for k in keys), data.get("disk"),
                   float(at) if at is not None else None, data.get("run_id"))


def cluster_dir(cluster: Cluster) -> Path:
    """The cluster's own directory: its state, and a directory per run."""
    return cluster.controller.state_dir / cluster.name


def controller_key(cluster: Cluster) -> tuple[Path, str]:
    """The controller's SSH key (the inventory's, or one made once in the cluster's directory):
    the private key's path and the public key line."""
    path = cluster.controller.ssh_key or cluster_dir(cluster) / "controller_ed25519"
    return ssh_key_pair(path, comment=f"pvcctl@{cluster.name}", what="controller.ssh_key")


class ClusterState:
    """One cluster's state directory. Cheap to open; every method reads or writes the files anew,
    so two `ClusterState`s of one cluster (or two processes) see each other's writes."""

    SECRETS = "secrets.yml"
    INSTALLED = "installed.json"

    def __init__(self, directory: Path, cluster: Cluster):
        self.directory = directory
        self.cluster = cluster

    @classmethod
    def open(cls, cluster: Cluster) -> ClusterState:
        directory = cluster_dir(cluster)
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as err:
            raise UserError(f"{directory}: cannot make the cluster's state directory: {err.strerror}; "
                            "fix controller.state_dir or its permissions") from None
        return cls(directory, cluster)

    def controller_key(self) -> tuple[Path, str]:
        return controller_key(self.cluster)

    def secrets(self, adopt: Path | None = None) -> dict[str, Any]:
        """The cluster's generated secrets: read back, any missing one made and kept (mode 0600).
        `adopt`: a secrets.yml an older pvcctl rendered, taken over when the cluster has none yet."""
        path = self.directory / self.SECRETS
        with self._locked():
            adopting = not path.exists() and adopt is not None and adopt.exists()
            secrets = load_or_generate(adopt if adopting else path, only_generated=adopting)
            text = dump_secrets(secrets)
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                self._write(path, text)
        return secrets

    def secrets_file(self) -> Path:
        return self.directory / self.SECRETS

    def check_secrets(self) -> None:
        """Raise a UserError when the kept secrets exist but cannot be read (before a deploy starts)."""
        path = self.directory / self.SECRETS
        if path.exists():
            try:
                parse_secrets(path)
            except OSError as err:
                raise UserError(f"{path}: cannot read the cluster's secrets: {err.strerror}; fix its "
                                "permissions (pvcctl needs to read it)") from None

    def installed(self) -> dict[str, InstallResult]:
        """Every node's latest install result, by hostname (nodes since removed from the inventory too)."""
        path = self.directory / self.INSTALLED
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise UserError(f"{path}: cannot read the cluster's install results ({err}); fix or move "
                            "the file") from None
        try:
            return {str(name): InstallResult.from_json(entry) for name, entry in data["nodes"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UserError(f"{path}: not an install results file of pvcctl; fix or move the file") from None

    def record_install(self, node: str, result: InstallResult) -> None:
        """Keep `result` as `node`'s latest install (its time: now, unless given)."""
        if result.installed_at is None:
            result = InstallResult(result.address, result.host_keys, result.disk, time.time(), result.run_id)
        self._update(lambda nodes: nodes | {node: result})

    def forget(self, node: str) -> None:
        """Drop `node`'s install result (a node taken out of the cluster)."""
        self._update(lambda nodes: {name: r for name, r in nodes.items() if name != node})

    def _update(self, change: Any) -> None:
        with self._locked():
            nodes = change(self.installed())
            body = {"version": 1, "cluster": self.cluster.name,
                    "nodes": {name: nodes[name].to_json() for name in sorted(nodes)}}
            self._write(self.directory / self.INSTALLED, json.dumps(body, indent=2) + "\n")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with _GUARD:
            lock = _LOCKS.setdefault(self.directory.resolve(), threading.Lock())
        with lock, open(self.directory / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # other processes; released when the file closes
            yield

    def _write(self, path: Path, text: str) -> None:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
