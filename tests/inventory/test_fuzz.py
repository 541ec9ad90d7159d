"""No inventory, however broken, gives a traceback or an exit status other than 0 or 2."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from pvcctl.cli import main

from .conftest import BASE

VOCABULARY = ["version", "cluster", "name", "domain", "controller", "url", "listen", "defaults", "bmc",
              "username", "password", "env", "file", "install", "disk", "nodes", "hostname", "node_id",
              "coordinator", "address", "networks", "upstream", "cluster", "storage", "subnet", "gateway",
              "floating_ip", "mtu", "device", "vlan", "install_network", "interface", "mac", "addresses"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(VOCABULARY), st.sampled_from(
                        ["10.100.0.1", "10.100.0.0/24", "https://10.1.1.1", "dhcp", "largest", "::1", "hv1"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(VOCABULARY), st.integers()), inner,
                                                 max_size=4)), max_leaves=12)


def run(tmp: Path, text: str, capsys: pytest.CaptureFixture[str]) -> int:
    path = tmp / "fuzz.yml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    old = sys.argv
    sys.argv = ["pvcctl", "validate", "--file-only", str(path)]  # the file alone: no preflight traffic
    try:
        main()
    except SystemExit as done:
        return int(done.code or 0)
    finally:
        sys.argv = old
        capsys.readouterr()
    return 0


def dump(data: Any) -> str:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, stream)
    return stream.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_any_text(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    assert run(tmp_path, text, capsys) in (0, 2)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=values)
def test_any_yaml_document(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: Any) -> None:
    assert run(tmp_path, dump(data), capsys) in (0, 2)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.lists(st.one_of(st.sampled_from(VOCABULARY), st.integers(0, 3)), min_size=1, max_size=4),
       value=values)
def test_any_change_to_a_valid_inventory(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          path: list[Any], value: Any) -> None:
    data = YAML(typ="safe").load(BASE)
    node = data
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    with contextlib.suppress(IndexError, TypeError):
        node[path[-1]] = value
    assert run(tmp_path, dump(data), capsys) in (0, 2)
