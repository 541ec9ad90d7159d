"""`bmc.secure_boot` in a deploy on the simulated lab (issue 15): keep writes nothing; on/off is set at
preflight, announced before the restart that applies it, and read back after it; a BMC that takes the
PATCH and changes nothing fails its node, in one line, while the others carry on."""

from __future__ import annotations

from typing import Any

from tests.deploy.conftest import LabFactory, Pvcctl, node_states, run_dir


def secure_boot_patches(bmc: Any) -> list[str]:
    return [w for w in bmc.writes if w.startswith("PATCH") and w.endswith("/SecureBoot")]


def log_of(lab: Any, node: str) -> list[str]:
    return (run_dir(lab) / "logs" / f"{node}.1.log").read_text().splitlines()


async def test_keep_reports_secure_boot_and_writes_nothing(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(2, personalities=["standard", "supermicro"])
    result = await pvcctl.run("deploy", str(lab.inventory))
    assert result.code == 0, result.out + result.err
    assert all(secure_boot_patches(lab.bmc(n)) == [] for n in ("hv1", "hv2"))
    assert any("[preflight] message: Secure Boot: off (DeployedMode)" in line for line in log_of(lab, "hv1"))
    # NOTE(supermicro): the licence gate is unknown, never an error
    assert any("Secure Boot: unknown (HTTP 403 OemLicenseNotPassed)" in line for line in log_of(lab, "hv2"))


async def test_on_is_set_announced_before_the_restart_and_read_back(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    # iDRAC 9 shows the change only after the reset; XCC at once
    lab = await make_lab(2, personalities=["idrac9", "xcc"], inventory={"bmc": {"secure_boot": "on"}})
    result = await pvcctl.run("deploy", str(lab.inventory))
    assert result.code == 0, result.out + result.err
    for node in ("hv1", "hv2"):
        bmc = lab.bmc(node)
        assert len(secure_boot_patches(bmc)) == 1  # sent once
        assert bmc.actions.index("secure boot on") < bmc.actions.index("reset On")
        assert (bmc.secure_boot.enable, bmc.secure_boot.current) == (True, True)
        assert lab.nodes[node].machine.secure_boot is True  # the ISO booted under Secure Boot
        log = log_of(lab, node)
        announced = next(i for i, line in enumerate(log) if "setting SecureBootEnable true; it needs a restart" in line)
        restarted = next(i for i, line in enumerate(log) if f"powering on {node} to boot the ISO" in line)
        read_back = next(i for i, line in enumerate(log) if "Secure Boot on as asked: on (" in line)
        assert announced < restarted < read_back, log
    assert any("it shows the old value until the restart" in line for line in log_of(lab, "hv1"))
    assert any("it shows the change" in line for line in log_of(lab, "hv2"))

    again = await pvcctl.run("deploy", "--reinstall", str(lab.inventory))
    assert again.code == 0, again.out + again.err
    assert len(secure_boot_patches(lab.bmc("hv1"))) == 1  # already on: nothing sent


async def test_a_bmc_that_takes_the_patch_and_changes_nothing_fails_its_node_only(
        make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(3, personalities=["xcc"], inventory={"bmc": {"secure_boot": "on"}},
                         deploy={"deadlines": {"boot": 4}})
    lab.bmc("hv2").faults.secure_boot_ignores_patch = True  # NOTE(lenovo/xcc): 200 PhysicalPresenceError
    result = await pvcctl.run("deploy", "--partial", str(lab.inventory))
    assert result.code == 1, result.out + result.err
    assert node_states(lab) == {"hv1": "done", "hv2": "failed", "hv3": "done"}
    failed = [line.split(" ", 1)[1] for line in result.out.splitlines() if "hv2: failed" in line]
    assert failed == ["hv2: failed (attempt 1): secure_boot: on asked, but after the restart the BMC still reads "
                      "SecureBootEnable false, SecureBootCurrentBoot Disabled, SecureBootMode UserMode (set it in "
                      "the server's firmware setup or the BMC's web interface (some BMCs need a licence or physical "
                      "presence for it), then pvcctl retry hv2; or write bmc.secure_boot: keep)"], result.out
    assert len(secure_boot_patches(lab.bmc("hv2"))) == 1  # not retried, not sent again


async def test_on_where_secure_boot_is_unknown_fails_at_preflight_untouched(
        make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(2, personalities=["standard", "openbmc"], inventory={"bmc": {"secure_boot": "off"}})
    result = await pvcctl.run("deploy", "--partial", str(lab.inventory))
    assert result.code == 1, result.out + result.err
    assert node_states(lab) == {"hv1": "done", "hv2": "failed"}
    assert ("hv2: failed (attempt 1): secure_boot: off asked, but Secure Boot is unknown here: the BMC offers no "
            "SecureBoot resource") in result.out
    assert lab.nodes["hv2"].machine.boots == [] and secure_boot_patches(lab.bmc("hv1")) == []  # hv1: off already


async def test_inspect_says_what_it_would_set_and_writes_nothing(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(1, inventory={"bmc": {"secure_boot": "on"}})
    result = await pvcctl.run("deploy", "--inspect", str(lab.inventory))
    assert result.code == 0, result.out + result.err
    assert secure_boot_patches(lab.bmc("hv1")) == [] and lab.bmc("hv1").secure_boot.enable is False
    assert any("a deploy sets SecureBootEnable true here (--inspect writes nothing)" in line
               for line in log_of(lab, "hv1"))
