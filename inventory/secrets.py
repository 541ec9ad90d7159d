"""The cluster's generated secrets: made once with a CSPRNG, kept in a 0600 file, reused.

pvc-ansible needs a root password, API secrets and tokens, database passwords and the Ceph
storage secret UUID. They are generated the first time an inventory of the cluster is rendered,
kept in the cluster's state directory (`inventory.state.ClusterState.secrets`) and read back
afterwards, so every render of every run gives the same secrets and a running cluster keeps them.
"""

from __future__ import annotations

import io
import secrets
import string
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from core.errors import UserError

ALPHABET = string.ascii_letters + string.digits


def password(length: int = 24) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def token() -> str:
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


# Each generated secret: its pvc-ansible variable name and how to make it.
GENERATED: dict[str, Callable[[], Any]] = {
    "root_password": password,
    "pvc_api_secret_key": lambda: secrets.token_hex(32),
    "pvc_api_tokens": lambda: [{"description": "pvcctl", "token": token()}],
    "pvc_ceph_storage_secret_uuid": token,
    "pvc_dns_database_password": password,
    "pvc_api_database_password": password,
    "pvc_replication_database_password": password,
    "pvc_superuser_database_password": password,
    "pvcctl_ipmi_pvc_password": lambda: password(16),  # IPMI limits passwords to 16 or 20 bytes
}


def parse_secrets(path: Path) -> dict[str, Any]:
    """The secrets kept in `path`; a UserError naming it when it is not a YAML mapping."""
    try:
        loaded = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except OSError:
        raise
    except Exception as err:  # any parse failure: say which file, keep the secrets untouched
        raise UserError(f"{path}: cannot read the kept secrets ({err}); fix or move the file") from None
    if not isinstance(loaded, dict):
        raise UserError(f"{path}: the kept secrets file is not a mapping; fix or move the file")
    return loaded


def dump_secrets(secrets: dict[str, Any]) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    stream = io.StringIO()
    stream.write("# The cluster's generated secrets, made once by pvcctl and reused by every render. Keep it.\n")
    yaml.dump(secrets, stream)
    return stream.getvalue()


def load_or_generate(existing: Path | None, *, only_generated: bool = False) -> dict[str, Any]:
    """The secrets kept in `existing` (if it exists), with any missing one generated; `only_generated`
    drops the file's other keys (taking over a rendered secrets.yml)."""
    kept = parse_secrets(existing) if existing is not None and existing.exists() else {}
    if only_generated:
        kept = {name: value for name, value in kept.items() if name in GENERATED}
    return {name: kept[name] if name in kept else make() for name, make in GENERATED.items()} | {
        name: value for name, value in kept.items() if name not in GENERATED
    }
