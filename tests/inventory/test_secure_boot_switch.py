"""The per-node Secure Boot switch: `bmc.secure_boot: keep | on | off`, under defaults.bmc and per node."""

from __future__ import annotations

from inventory.load import load_inventory
from inventory.model import SecureBootSwitch

from .conftest import BASE
from .test_validate import problems, run_cli

DEFAULT_ON = BASE.replace("    password: {env: TEST_BMC_PASSWORD}\n",
                          "    password: {env: TEST_BMC_PASSWORD}\n    secure_boot: on\n")


def test_keep_is_the_default(write) -> None:
    cluster = load_inventory(write(BASE))
    assert {n.bmc.secure_boot for n in cluster.nodes} == {SecureBootSwitch.KEEP}


def test_defaults_give_it_and_a_node_overrides_it(write) -> None:
    text = DEFAULT_ON.replace('bmc: {address: "https://10.100.1.2"}',
                              'bmc: {address: "https://10.100.1.2", secure_boot: "off"}')
    cluster = load_inventory(write(text))
    wishes = {n.hostname: n.bmc.secure_boot for n in cluster.nodes}
    assert wishes == {"hv1": SecureBootSwitch.ON, "hv2": SecureBootSwitch.OFF, "hv3": SecureBootSwitch.ON}


def test_yaml_booleans_are_not_taken_for_the_words(write) -> None:
    # YAML 1.2 (ruamel) reads `on` as the string; a `true` is refused rather than guessed at.
    text = BASE.replace('bmc: {address: "https://10.100.1.3"}',
                        'bmc: {address: "https://10.100.1.3", secure_boot: true}')
    assert problems(write(text)) == [
        "39:55: nodes[2].bmc.secure_boot: True is not allowed; use one of 'keep', 'on' or 'off'"]


def test_a_bad_value_is_a_located_error_and_exit_2(write) -> None:
    bad = write(DEFAULT_ON.replace("    secure_boot: on\n", "    secure_boot: enabled\n"))
    done = run_cli("validate", "--file-only", str(bad), env={"TEST_BMC_PASSWORD": "x", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{bad}:11:18: defaults.bmc.secure_boot: 'enabled' is not allowed; use one of 'keep', 'on' or 'off'"]
