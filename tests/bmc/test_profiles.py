"""Vendor profile selection from what a BMC says about itself, and the image URL rules per vendor."""

from __future__ import annotations

import pytest

from controller.bmc.media import check_image_url
from controller.bmc.quirks import (
    AMI,
    DGX,
    IDRAC8,
    IDRAC9,
    IDRAC9_OLD,
    IDRAC10,
    ILO,
    OPENBMC,
    PROFILES,
    STANDARD,
    SUPERMICRO,
    XCC,
    select_profile,
)


@pytest.mark.parametrize(
    ("service_vendor", "manufacturer", "model", "firmware", "expected"),
    [
        ("Dell", "Dell Inc.", "PowerEdge R650", "6.10.30.00", IDRAC9),
        ("Dell", "Dell Inc.", "PowerEdge R650", "6.00.00.00", IDRAC9),
        # Dell's script allows the standard Cd from 4.40; pvcctl, as Ironic, only from 6.00.00.00
        ("Dell", "Dell Inc.", "PowerEdge R640", "4.40.00.00", IDRAC9_OLD),
        ("Dell", "Dell Inc.", "PowerEdge R640", "5.10.50.00", IDRAC9_OLD),
        ("Dell", "Dell Inc.", "PowerEdge R630", "2.83.83.83", IDRAC8),
        ("Dell", "Dell Inc.", "PowerEdge R770", "1.20.10.00", IDRAC10),
        ("AMI", "NVIDIA", "DGXH100", "24.09.17", DGX),  # an AMI BMC, told apart by maker and model
        ("AMI", "Dell Inc.", "GB200 NVL", "13.2", AMI),  # the BMC's vendor wins over the system's maker
        ("HPE", "HPE", "ProLiant DL360 Gen10 Plus", "iLO 5 v2.72", ILO),
        ("", "HP", "ProLiant DL380 Gen9", "iLO 4 v2.80", ILO),
        ("Supermicro", "Supermicro", "SYS-120U-TNR", "01.01.06", SUPERMICRO),
        ("Lenovo", "Lenovo", "ThinkSystem SR650", "TEI3A6N-4.10", XCC),
        ("", "ASRockRack", "ROMED8", "1.0", AMI),
        ("OpenBMC", "Contoso", "Whatever", "2.16", OPENBMC),
        ("", "Contoso", "Standard Server", "1.0", STANDARD),
    ],
)
def test_profile_choice(service_vendor: str, manufacturer: str, model: str, firmware: str, expected) -> None:
    chosen = select_profile(service_vendor=service_vendor, manufacturer=manufacturer, model=model, firmware=firmware)
    assert chosen is expected


@pytest.mark.parametrize(
    ("manager_model", "firmware", "expected"),
    [
        ("13G Monolithic", "2.83.83.83", IDRAC8),
        ("14G Monolithic", "5.10.50.00", IDRAC9_OLD),
        ("16G Monolithic", "7.00.00.00", IDRAC9),
        ("17G Monolithic", "1.20.10.00", IDRAC10),
        ("17G Monolithic", "2.10.00.00", IDRAC10),  # the generation wins over the firmware's numbering
    ],
)
def test_dell_generation_from_the_manager_model(manager_model: str, firmware: str, expected) -> None:
    chosen = select_profile(service_vendor="Dell", manufacturer="Dell Inc.", model="PowerEdge", firmware=firmware,
                            manager_model=manager_model)
    assert chosen is expected


def test_every_quirk_has_its_note_and_source() -> None:
    for profile in PROFILES:
        for quirk in profile.quirks:
            assert quirk.note.startswith("NOTE(") and quirk.source, (profile.name, quirk)
    assert all(p.quirks for p in PROFILES if p is not STANDARD)


@pytest.mark.parametrize(
    ("profile", "url", "complaint"),
    [
        (OPENBMC, "http://10.0.0.5/pvc.iso", "only https://"),
        (ILO, "http://10.0.0.5/pvc.img", "ending in .iso"),
        (SUPERMICRO, "http://10.0.0.5/pvc.iso?node=hv1", "rejects ? and ="),
        (STANDARD, "ftp://10.0.0.5/pvc.iso", "must be http:// or https://"),
    ],
)
def test_image_url_rules(profile, url: str, complaint: str) -> None:
    refusal = check_image_url(url, profile)
    assert refusal is not None and complaint in refusal
    assert check_image_url("https://10.0.0.5/pvc.iso", profile) is None
