"""Each vendor quirk: the lab BMC really has it (raw request), and the Bmc copes with it."""

from __future__ import annotations

import pytest

from controller.bmc.errors import BmcError, FailureClass
from tests.bmc.conftest import LabFactory, connect, raw_request


async def test_supermicro_flags_usbcd_and_not_connected(lab_factory: LabFactory, http, iso_server) -> None:
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory(["supermicro"]) as lab:
        emulated = lab.bmcs[0].bmc
        action = f"{emulated.media_path}/CD1/Actions/VirtualMedia.InsertMedia"
        refused = await raw_request(lab, "POST", action, json={"Image": image, "Inserted": True})
        assert refused.status == 400
        cd = await raw_request(lab, "PATCH", emulated.system_path, json={"Boot": {
            "BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once", "BootSourceOverrideMode": "UEFI"}})
        assert cd.status == 400
        async with connect(lab, http) as bmc:
            await bmc.insert_media(image)
            assert (await bmc.set_boot_once_cd()).target_name == "UsbCd"
            await bmc.eject_all_media()
            slot = emulated.slot("CD1")
            assert slot.image == image and slot.inserted and slot.connected_via == "NotConnected"
            assert not (await bmc.media_status()).inserted
            await bmc.insert_media(image)  # a NotConnected slot counts as empty: no 409
            assert emulated.slot("CD1").connected_via == "URI"


async def test_supermicro_missing_licence_is_clear_and_not_retried(lab_factory: LabFactory, http, iso_server) -> None:
    async with lab_factory(["supermicro"], faults={"license_missing": True}) as lab, connect(lab, http) as bmc:
        with pytest.raises(BmcError) as caught:
            await bmc.insert_media(f"{iso_server.http}/pvc.iso")
    err = caught.value
    assert err.failure is FailureClass.LICENSE and err.attempts == 1
    assert "OemLicenseNotPassed" in str(err) and "licence" in err.hint


async def test_ilo_eject_body_iso_suffix_and_post_refusal(lab_factory: LabFactory, http, iso_server) -> None:
    async with lab_factory(["ilo"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            with pytest.raises(BmcError, match=r"image name ending in \.iso"):
                await bmc.insert_media(f"{iso_server.http}/pvc-image")
            assert emulated.actions == []  # refused before anything was sent
            await bmc.insert_media(f"{iso_server.http}/pvc.iso")
            bare = await raw_request(lab, "POST", f"{emulated.media_path}/2/Actions/VirtualMedia.EjectMedia")
            assert bare.status == 415
            await bmc.eject_all_media()
            assert not emulated.slot("2").inserted
            await bmc.power_on()
            refused = await raw_request(lab, "PATCH", emulated.system_path, json={"Boot": {
                "BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}})
            assert refused.status == 400  # still in POST
            await bmc.set_boot_once_cd()  # retried until POST is over
            assert emulated.machine.boot.target == "Cd"


async def test_idrac10_slot_one_and_poweron_conflict(lab_factory: LabFactory, http, iso_server) -> None:
    async with lab_factory(["idrac10"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            await bmc.insert_media(f"{iso_server.http}/pvc.iso")
            assert emulated.slot("1").inserted and not emulated.slot("2").inserted
            await bmc.power_on()
            await bmc.force_off()
            conflict = await raw_request(lab, "POST", f"{emulated.system_path}/Actions/ComputerSystem.Reset",
                                         json={"ResetType": "On"})
            assert conflict.status == 409
            await bmc.power_on()  # retries the 409 until the iDRAC accepts
            assert emulated.machine.power_state == "On"


async def test_idrac9_task_monitor_and_lingering_eject(lab_factory: LabFactory, http, iso_server) -> None:
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory(["idrac9"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            status = await bmc.insert_media(image)  # answered 202 + task monitor
            assert status.inserted and emulated.slot("1").image == image
            emulated.eject("1", has_body=False)  # someone else ejects: the slot lingers as inserted
            assert emulated.slot_inserted(emulated.slot("1"))
            again = await raw_request(lab, "POST", f"{emulated.media_path}/1/Actions/VirtualMedia.InsertMedia",
                                      json={"Image": image})
            assert again.status == 500  # eject still in progress
            assert (await bmc.insert_media(image)).inserted
            assert emulated.actions.count(f"insert 1 {image}") == 2


async def test_old_idrac_media_under_managers(lab_factory: LabFactory, http, iso_server) -> None:
    async with lab_factory(["idrac9-old"]) as lab, connect(lab, http) as bmc:
        status = await bmc.insert_media(f"{iso_server.http}/pvc.iso")
    assert status.slot == "/redfish/v1/Managers/iDRAC.Embedded.1/VirtualMedia/CD"


async def test_xcc_inserts_by_patch_into_ext_slot(lab_factory: LabFactory, http, iso_server) -> None:
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory(["xcc"]) as lab:
        emulated = lab.bmcs[0].bmc
        post = await raw_request(lab, "POST", f"{emulated.media_path}/EXT1/Actions/VirtualMedia.InsertMedia",
                                 json={"Image": image})
        assert post.status == 404  # no actions on XCC
        async with connect(lab, http) as bmc:
            assert (await bmc.insert_media(image)).slot.endswith("/EXT1")
            assert not emulated.slot("RDOC1").inserted
            await bmc.eject_all_media()
            assert not emulated.slot("EXT1").inserted


async def test_ami_transfer_protocol_and_full_boot_object(lab_factory: LabFactory, http, iso_server) -> None:
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory(["ami"]) as lab:
        emulated = lab.bmcs[0].bmc
        bare = await raw_request(lab, "POST", f"{emulated.media_path}/CD1/Actions/VirtualMedia.InsertMedia",
                                 json={"Image": image})
        assert bare.status == 400
        partial = await raw_request(lab, "PATCH", emulated.system_path,
                                    json={"Boot": {"BootSourceOverrideTarget": "Cd"}})
        assert partial.status == 400
        async with connect(lab, http) as bmc:
            await bmc.insert_media(image)
            assert emulated.slot("CD1").transfer_protocol == "HTTP"
            await bmc.set_boot_once_cd()
            assert emulated.machine.boot.mode == "UEFI" and emulated.machine.boot.enabled == "Once"


async def test_openbmc_says_https_only_and_skips_the_kvm_slot(lab_factory: LabFactory, http, iso_server) -> None:
    async with lab_factory(["openbmc"]) as lab, connect(lab, http) as bmc:
        with pytest.raises(BmcError) as caught:
            await bmc.insert_media(f"{iso_server.http}/pvc.iso")
        assert "only https://" in str(caught.value) and "serves http://" in str(caught.value)
        status = await bmc.insert_media(f"{iso_server.https}/pvc.iso")
    assert status.slot.endswith("/Slot_1")


async def test_standard_vendor_probes_insert_payload(lab_factory: LabFactory, http, iso_server) -> None:
    """An unknown vendor that wants TransferProtocolType and rejects Inserted still gets its image."""
    async with lab_factory(["supermicro"]) as lab:
        emulated = lab.bmcs[0].bmc
        # Behind a standard profile: make the system look like an unknown vendor.
        object.__setattr__(emulated, "personality", emulated.personality.__class__(
            **{**emulated.personality.__dict__, "manufacturer": "Nobody", "service_vendor": "",
               "needs_transfer_protocol": True}))
        async with connect(lab, http) as bmc:
            assert (await bmc.identity()).profile == "standard"
            await bmc.insert_media(f"{iso_server.http}/pvc.iso")
            assert emulated.slot("CD1").transfer_protocol == "HTTP"
            assert (await bmc.set_boot_once_cd()).target_name == "UsbCd"  # from AllowableValues


async def test_broken_iso_server_shows_up(lab_factory: LabFactory, http, iso_server) -> None:
    async with lab_factory(["standard"]) as lab, connect(lab, http) as bmc:
        with pytest.raises(BmcError) as caught:
            await bmc.insert_media(f"{iso_server.http}/broken.iso")
        with pytest.raises(BmcError, match=r"HEAD .* answered 404"):
            await bmc.insert_media(f"{iso_server.http}/missing.iso")
    assert "not an ISO 9660 header" in str(caught.value)
    assert "broken.iso" in caught.value.hint
