"""TLS: verified by default, per-BMC CA bundle, pinned fingerprint, explicit insecure; no secret in logs."""

from __future__ import annotations

import logging

import pytest

from controller.bmc.endpoint import BmcEndpoint
from controller.bmc.errors import BmcError, BmcTargetError, FailureClass
from tests.bmc.conftest import LabFactory, connect, lab_password


async def test_unknown_ca_is_refused_and_not_retried(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"]) as lab:
        with pytest.raises(BmcError) as caught:
            async with connect(lab, http, ca_bundle=None):
                pass
        assert lab.bmcs[0].bmc.requests == 0  # nothing reached the BMC, not even the password
    err = caught.value
    assert err.failure is FailureClass.TLS and err.attempts == 1
    assert "TLS verification failed" in str(err) and "--ca-bundle" in err.hint


async def test_ca_bundle_verifies(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"]) as lab, connect(lab, http) as bmc:
        assert (await bmc.identity()).serial == "PVC000001"


async def test_pinned_fingerprint_accepts_its_certificate_only(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard", "standard"]) as lab:
        assert lab.pki is not None
        hosts = [b.url.split("//")[1].rsplit(":", 1)[0] for b in lab.bmcs]
        good, other = lab.pki.fingerprint(hosts[0]), lab.pki.fingerprint(hosts[1])
        assert good != other  # every lab BMC has its own certificate
        async with connect(lab, http, ca_bundle=None, fingerprint=good.upper()) as bmc:
            assert (await bmc.identity()).serial == "PVC000001"
        before = lab.bmcs[0].bmc.requests
        with pytest.raises(BmcError) as caught:
            async with connect(lab, http, ca_bundle=None, fingerprint=other):
                pass
        assert lab.bmcs[0].bmc.requests == before  # refused before any request reached it
    assert caught.value.failure is FailureClass.TLS
    assert "pinned fingerprint" in str(caught.value) and good in str(caught.value)


async def test_insecure_only_when_explicit_and_warns(lab_factory: LabFactory, http, caplog) -> None:
    async with lab_factory(["standard"]) as lab:
        with caplog.at_level(logging.WARNING):
            async with connect(lab, http, ca_bundle=None, verify_tls=False) as bmc:
                await bmc.power_state()
    assert "TLS verification is OFF" in caplog.text


def test_bad_targets_are_user_errors(tmp_path) -> None:
    from pydantic import SecretStr

    with pytest.raises(BmcTargetError, match="https://host"):
        BmcEndpoint("http://127.0.0.1", "admin", SecretStr("x"))
    with pytest.raises(BmcTargetError, match="64 hex digits"):
        BmcEndpoint("https://127.0.0.1", "admin", SecretStr("x"), fingerprint="abc")
    with pytest.raises(BmcTargetError, match="not a readable file"):
        BmcEndpoint("https://127.0.0.1", "admin", SecretStr("x"), ca_bundle=tmp_path / "none.pem")


async def test_password_never_logged(lab_factory: LabFactory, http, iso_server, caplog) -> None:
    async with lab_factory(["idrac9"], faults={"error_rate": 0.2}) as lab:
        password = lab_password(lab)
        with caplog.at_level(logging.DEBUG):
            async with connect(lab, http) as bmc:
                await bmc.identity()
                await bmc.insert_media(f"{iso_server.http}/pvc.iso")
                await bmc.power_on()
                text = repr(bmc) + repr(bmc.endpoint)
            with pytest.raises(BmcError) as caught:
                async with connect(lab, http, ca_bundle=None):
                    pass
    assert password not in caplog.text + text + str(caught.value)
    assert "node001" in caplog.text  # the log did record the work
