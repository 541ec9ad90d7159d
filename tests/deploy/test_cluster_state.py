"""A cluster outlives its runs: a deploy, an added node and a retry each leave one pvc-ansible inventory of
the whole cluster, with the secrets of the first run, and the next-step hint bootstraps only once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.deploy.conftest import LabFactory, Pvcctl, node_states, run_dir


def _rendered(lab_run: Path) -> tuple[str, str, dict[str, Any]]:
    """hosts, known_hosts and the secrets (generated ones; each node's BMC password is a lookup of its own)."""
    out = lab_run / "pvc-ansible"
    secrets = YAML(typ="safe").load((out / "group_vars" / "simlab" / "secrets.yml").read_text())
    return (out / "hosts").read_text(), (out / "known_hosts").read_text(), secrets


def _same_secrets(later: dict[str, Any], earlier: dict[str, Any]) -> bool:
    lookups, before = later.pop("pvcctl_bmc_passwords"), earlier.get("pvcctl_bmc_passwords", {})
    return later == {k: v for k, v in earlier.items() if k != "pvcctl_bmc_passwords"} and \
        all(lookups[node] == lookup for node, lookup in before.items())


async def test_deploy_three_add_a_fourth_retry_it_then_reinstall_one(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(4, deploy={"retries": 0, "deadlines": {"preflight": 8}})
    inventory = str(lab.inventory)
    first = await pvcctl.run("deploy", "--only", "hv1,hv2,hv3", inventory)
    assert first.code == 0, first.out + first.err
    assert "-e do_bootstrap=yes pvc.yml" in first.out  # a new cluster: bootstrapped once
    hosts, known, secrets = _rendered(run_dir(lab))
    assert [n for n in ("hv1", "hv2", "hv3", "hv4") if f"{n}.sim.pvc.test" in hosts] == ["hv1", "hv2", "hv3"]

    lab.bmc("hv4").faults.error_rate = 1.0  # the added node fails at first
    added = await pvcctl.run("deploy", "--only", "hv4", inventory)
    assert added.code == 1 and not (run_dir(lab) / "pvc-ansible").exists()
    lab.bmc("hv4").faults.error_rate = 0.0
    retried = await pvcctl.run("retry", "hv4", "-i", inventory)
    assert retried.code == 0, retried.out + retried.err
    hosts4, known4, secrets4 = _rendered(run_dir(lab))
    assert all(f"hv{n}.sim.pvc.test ansible_host=127.2.0.{n}" in hosts4 for n in range(1, 5))
    assert _same_secrets(secrets4, secrets)  # the running cluster's passwords, keys and tokens: unchanged
    assert known4.startswith(known) and len(known4.splitlines()) == 4  # hv4's key added, the others' kept
    assert "do_bootstrap" not in retried.out.replace("never do_bootstrap again", "")
    assert "adds hv4 to the running cluster" in retried.out

    again = await pvcctl.run("deploy", "--reinstall", "--only", "hv2", inventory)
    assert again.code == 0, again.out + again.err
    hosts5, known5, secrets5 = _rendered(run_dir(lab))
    assert hosts5 == hosts4 and _same_secrets(secrets5, secrets)
    assert len(known5.splitlines()) == 4 and "adds hv2 to the running cluster" in again.out
    assert node_states(lab) == {"hv2": "done"}
