"""Render the inventory pvc-ansible runs from (reference/pvc-seed.md §3), atomically.

    DIR/hosts                              INI: [sites:children], one group for the cluster
    DIR/group_vars/<cluster>/base.yml      the base role's keys: domain, DNS, IPMI, admin users, networks
    DIR/group_vars/<cluster>/pvc.yml       the pvc role's keys: API, databases, pvc_nodes, derived block
    DIR/group_vars/<cluster>/secrets.yml   the cluster's secrets (mode 0600) and how Ansible reads BMC passwords
    DIR/files/<cluster>/                   where pvc-ansible's bootstrap keeps Ceph keys (never wiped)
    DIR/ceph -> files                      the link pvc-ansible's later plays read through
    DIR/known_hosts                        each installed node's SSH host keys

The nodes rendered are every node the cluster has installed (its state, `inventory.state`), with the
nodes a run just finished, that the inventory still names: the hosts, pvc_nodes and ipmi.hosts of
every run agree, and the secrets are the cluster's, made once. Everything is rendered in memory and
written to a temporary directory first; only then is each file moved into place, so a failed render
leaves DIR as it was.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from core.errors import UserError
from inventory.model import Cluster, Node
from inventory.pvc_vars import base_vars, bmc_passwords, pvc_vars
from inventory.state import ClusterState, InstallResult, cluster_dir

__all__ = ["InstallResult", "RenderReport", "check_render_secrets", "load_results", "next_step", "render"]

HEADER = "# Written by pvcctl from {source}. Edit the inventory and render again rather than this file.\n"


@dataclass(frozen=True)
class RenderReport:
    """What a render wrote, and what the caller tells the user (each warning once)."""

    out: Path
    files: tuple[Path, ...]
    nodes: tuple[str, ...]  # rendered, in the inventory's order
    added: tuple[str, ...]  # installed by the latest run: what the next playbook run sets up
    bootstrap: bool  # every rendered node is new: pvc-ansible's first run bootstraps the cluster
    removed: tuple[str, ...] = ()  # installed once, no longer in the inventory: left out
    warnings: tuple[str, ...] = ()


def load_results(path: Path, cluster: Cluster) -> dict[str, InstallResult]:
    """Install results from a deploy: {"hv1": {"address": "...", "host_keys": ["ssh-ed25519 ..."]}}
    (disk, installed_at and run_id optional; run_id defaults to one for this file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read install results: {err}") from None
    known = {node.hostname for node in cluster.nodes}
    results = {}
    run_id = f"results-{path.name}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(path.stat().st_mtime))}"
    for name, entry in (data.items() if isinstance(data, dict) else []):
        if name not in known:
            raise UserError(f"{path}: {name!r} is not a node of cluster {cluster.name}; remove it")
        try:
            result = InstallResult.from_json(entry)
            ipaddress.ip_address(result.address)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UserError(f"{path}: {name}: needs an address and a list of host_keys") from None
        results[name] = InstallResult(str(ipaddress.ip_address(result.address)), result.host_keys, result.disk,
                                      result.installed_at, result.run_id or run_id)
    return results


def check_render_secrets(cluster: Cluster) -> None:
    """Raise a UserError naming the secret when one the render (or Ansible) needs cannot be read now:
    a BMC password's environment variable unset or empty, its file unreadable or empty, or the
    cluster's kept secrets unreadable. The deploy calls it before it starts."""
    for node in cluster.nodes:
        source = node.bmc.password_source
        if source is None:
            continue
        kind, _, where = source.partition(":")
        what = f"the BMC admin password of {node.hostname}"
        if kind == "env" and not os.environ.get(where, "").strip():
            raise UserError(f"environment variable {where} ({what}) is not set or empty; export it before running")
        if kind == "file":
            try:
                lines = Path(where).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as err:
                reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
                raise UserError(f"cannot read {where} ({what}): {reason}; create it or fix the path") from None
            if not lines or not lines[0].strip():
                raise UserError(f"{where} ({what}) is empty; write the password on its first line")
    ClusterState(cluster_dir(cluster), cluster).check_secrets()  # reads only: makes no state directory


def render(cluster: Cluster, out: Path, *, finished: Mapping[str, InstallResult] | None = None,
           state: ClusterState | None = None, controller_key: str | None = None,
           results: Mapping[str, InstallResult] | None = None) -> RenderReport:
    """Write pvc-ansible's inventory for `cluster` (the whole inventory) into `out`.

    `finished`: install results of nodes a run just finished; they are recorded in the cluster's
    state first (recording them again is harmless). The nodes rendered are all the state's installed
    nodes the inventory names; with none installed at all, every node of the inventory (a preview,
    with a warning). `results` is `finished`'s old name. Returns what was written and the hint's facts."""
    state = state or ClusterState.open(cluster)
    for name, result in {**(results or {}), **(finished or {})}.items():
        state.record_install(name, result)
    installed = state.installed()
    names = {node.hostname for node in cluster.nodes}
    removed = tuple(sorted(set(installed) - names))
    warnings = [f"{name} was installed (run {installed[name].run_id}) but is no longer in {cluster.source.name}: "
                "left out of the pvc-ansible inventory; pvcctl inventory forget " + name + " once it is gone"
                for name in removed]
    nodes = [node for node in cluster.nodes if node.hostname in installed]
    if not nodes:
        nodes = list(cluster.nodes)
        warnings.append(f"no node of cluster {cluster.name} is installed yet: rendering every node of the "
                        "inventory (a preview)")
    added, bootstrap = _latest_run(nodes, installed)
    key = controller_key if controller_key is not None else state.controller_key()[1]
    secrets = state.secrets(adopt=out / "group_vars" / cluster.name / "secrets.yml")
    files = _files(cluster, nodes, key, installed, secrets)
    written = _write(out, cluster.name, files)
    return RenderReport(out, tuple(written), tuple(n.hostname for n in nodes), added, bootstrap, removed,
                        tuple(warnings))


def _latest_run(nodes: Sequence[Node], installed: Mapping[str, InstallResult]) -> tuple[tuple[str, ...], bool]:
    """The nodes of the latest run that installed any, and whether that run installed them all."""
    done = [node.hostname for node in nodes if node.hostname in installed]
    if not done:
        return tuple(node.hostname for node in nodes), True
    latest = max(done, key=lambda name: installed[name].installed_at or 0.0)
    run = installed[latest].run_id
    added = tuple(name for name in done if installed[name].run_id == run)
    return added, len(added) == len(nodes)


def next_step(cluster: Cluster, report: RenderReport) -> str:
    """The command to run next, as pvc-ansible's README gives it: `do_bootstrap=yes` only when every
    node is new; otherwise the playbook on the whole cluster group without it (pvc-ansible finds its
    new hosts itself, by its /etc/pvc-install.* markers, and the others learn of them: /etc/hosts,
    pvc_nodes), with the new nodes named."""
    start = f"next: cd <your pvc-ansible local repo> && cp -r {report.out.resolve()}/. . && "
    if report.bootstrap:
        return start + (f"ansible-playbook -i hosts -l {cluster.name} -e do_bootstrap=yes pvc.yml   "
                        "(a new cluster: do_bootstrap on this first run only)")
    return start + (f"ansible-playbook -i hosts -l {cluster.name} pvc.yml   (adds {', '.join(report.added)} to "
                    "the running cluster; never do_bootstrap again)")


def _write(out: Path, cluster_name: str, files: dict[str, str]) -> list[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for relative, text in files.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            mode = 0o600 if relative.endswith("secrets.yml") else 0o644
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        _install(staging, out, cluster_name, files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / relative for relative in files]


def _install(staging: Path, out: Path, cluster_name: str, files: dict[str, str]) -> None:
    """Move each staged file over its final name (each move atomic); keep files/<cluster>."""
    out.mkdir(exist_ok=True)
    for relative in files:
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / relative, out / relative)
    (out / "files" / cluster_name).mkdir(parents=True, exist_ok=True)
    link = out / "ceph"
    if not link.is_symlink():
        link.symlink_to("files")


def _files(cluster: Cluster, nodes: Sequence[Node], controller_key: str, installed: Mapping[str, InstallResult],
           secrets: dict[str, Any]) -> dict[str, str]:
    group = f"group_vars/{cluster.name}"
    return {
        "hosts": _hosts(cluster, nodes, installed),
        f"{group}/base.yml": _yaml(base_vars(cluster, nodes, controller_key), cluster),
        f"{group}/pvc.yml": _yaml(pvc_vars(cluster, nodes), cluster),
        f"{group}/secrets.yml": _yaml(secrets | {"pvcctl_bmc_passwords": bmc_passwords(nodes)}, cluster),
        "known_hosts": _known_hosts(nodes, installed),
    }


def _ansible_host(node: Node, installed: Mapping[str, InstallResult]) -> str:
    if node.hostname in installed:
        return installed[node.hostname].address
    return node.management_address or node.addresses["upstream"]


def _hosts(cluster: Cluster, nodes: Sequence[Node], installed: Mapping[str, InstallResult]) -> str:
    lines = [HEADER.format(source=cluster.source.name).rstrip(), "[sites:children]", cluster.name, "",
             "[sites:vars]", "ansible_python_interpreter=/usr/bin/python3", "", f"[{cluster.name}]"]
    lines += [f"{node.fqdn} ansible_host={_ansible_host(node, installed)}" for node in nodes]
    return "\n".join(lines) + "\n"


def _known_hosts(nodes: Sequence[Node], installed: Mapping[str, InstallResult]) -> str:
    lines = []
    for node in nodes:
        result = installed.get(node.hostname)
        if result is None:
            continue
        names = ",".join(dict.fromkeys([node.fqdn, node.hostname, result.address]))
        lines += [f"{names} {' '.join(key.split()[:2])}" for key in result.host_keys]
    return "".join(line + "\n" for line in lines)


def _yaml(data: dict[str, Any], cluster: Cluster) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    stream = io.StringIO()
    stream.write("---\n" + HEADER.format(source=cluster.source.name))
    yaml.dump(data, stream)
    return stream.getvalue()
