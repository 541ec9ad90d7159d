"""Vendor profiles as data: what each BMC family needs that standard Redfish does not say.

A profile is chosen from the service root's Vendor, the system's Manufacturer and Model and the
manager's Model and firmware version, never from host names. Every quirk is a `Quirk` with its
NOTE(vendor/model) and its source, so `pvcctl bmc info --json` and a reader of this file can tell why
pvcctl does what it does.
Unknown vendors get the standard profile: pvcctl then probes (slots, payload fields, ETags).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field


class Vendor(enum.StrEnum):
    DELL = "dell"
    HPE = "hpe"
    SUPERMICRO = "supermicro"
    LENOVO = "lenovo"
    AMI = "ami"
    OPENBMC = "openbmc"
    NVIDIA = "nvidia"
    STANDARD = "standard"


@dataclass(frozen=True)
class Quirk:
    note: str
    source: str


@dataclass(frozen=True)
class VendorProfile:
    """How pvcctl talks to one BMC family. Defaults are standard Redfish."""

    name: str
    vendor: Vendor = Vendor.STANDARD
    media_slot_ids: tuple[str, ...] = ()  # only these slot Ids may be used (empty: any)
    media_slot_prefixes: tuple[str, ...] = ()  # only slots whose Id starts so
    insert_flags: bool = True  # send Inserted/WriteProtected with InsertMedia
    insert_transfer_protocol: bool = False  # send TransferProtocolType with InsertMedia
    insert_by_patch: bool = False  # no InsertMedia action: PATCH Image/Inserted
    eject_body: dict[str, object] | None = None  # None: POST EjectMedia without a body
    image_suffix_iso: bool = False  # the image URL path must end in .iso
    image_https_only: bool = False
    image_no_query: bool = False  # no ? or = in the image URL
    not_connected_is_empty: bool = False  # ConnectedVia NotConnected means empty, whatever Image says
    cd_boot_target: str = "Cd"
    cd_boot_dell_oem: bool = False  # one-time virtual CD boot by Dell's ImportSystemConfiguration (VCD-DVD)
    full_boot_object: bool = False  # every boot PATCH carries Target, Enabled and Mode
    # Generic, on by default: write Boot through the System's @Redfish.Settings object when that carries Boot.
    boot_settings_object: bool = True
    # Generic, on by default: an InsertMedia refused for missing UserName/Password is sent again with
    # placeholder image credentials (never the BMC's).
    media_placeholder_credentials: bool = True
    service_tag_in_sku: bool = False
    quirks: tuple[Quirk, ...] = field(default=())


STANDARD = VendorProfile(name="standard")

IDRAC9 = VendorProfile(
    name="dell-idrac9",
    vendor=Vendor.DELL,
    service_tag_in_sku=True,
    quirks=(
        Quirk("NOTE(dell/idrac9): from firmware 6.00 virtual media is under Systems/System.Embedded.1, "
              "before under Managers/iDRAC.Embedded.1; pvcctl looks in Systems first, then Managers",
              "dell/iDRAC-Redfish-Scripting issue 265; ironic redfish/boot.py"),
        Quirk("NOTE(dell/idrac9): an eject is still in progress for a while: the slot still reads inserted "
              "and an insert gets 5xx; pvcctl polls the eject and retries the insert",
              "ironic story 2008504"),
        Quirk("NOTE(dell/idrac9): the service tag is in SKU, SerialNumber is the board's",
              "ironic bug 2146585, commit 6205f0090"),
        Quirk("NOTE(dell/idrac9): about 8 sessions at most (RAC0218, 503): pvcctl always logs out and "
              "backs off on 503", "bb-Ricardo/check_redfish PR 198"),
    ),
)

# Ironic uses the standard BootSourceOverrideTarget Cd on iDRAC only from firmware 6.00.00.00 (ironic
# commit 73040c88d; its redfish.rst note), although Dell's own script allows it from 4.40: pvcctl
# follows Ironic's threshold.
DELL_STANDARD_CD_BOOT_FROM = 6

_DELL_OEM_CD_BOOT = Quirk(
    "NOTE(dell/idrac9 < 6.00, idrac8): the standard BootSourceOverrideTarget Cd boots the physical optical "
    "drive, not the virtual CD; pvcctl sets the one-time boot with the OEM ImportSystemConfiguration "
    "(ServerBoot.1#BootOnce Enabled, ServerBoot.1#FirstBootDevice VCD-DVD) and follows its job to the end. "
    "The standard path is used only from firmware 6.00.00.00, as Ironic does",
    "ironic commit 73040c88d and redfish.rst (iDRAC >= 6.00.00.00); sushy oem/dell manager.py "
    "set_virtual_boot_device; dell/iDRAC-Redfish-Scripting SetNextOneTimeBootVirtualMediaDeviceOemREDFISH.py; "
    "dell/dellemc-openmanage-ansible-modules issue 693",
)

_DELL_JOB_RUNNING = Quirk(
    "NOTE(dell/idrac9 < 6.00, idrac8): the Lifecycle Controller takes one configuration job at a time: while "
    "another runs, ImportSystemConfiguration is refused with RAC0679; pvcctl sends it again every 15 s "
    "(BmcTimings.config_job_wait) for up to 300 s (config_job_deadline, under the boot step's deadline), then "
    "fails with the iDRAC's answer and the Job Queue to look at",
    "sushy oem/dell manager.py set_virtual_boot_device (RETRY_DELAY 15 s, RETRY_COUNT 35) and constants.py "
    "IDRAC_JOB_RUNNING",
)

_DELL_CONFIG_PENDING = Quirk(
    "NOTE(dell/idrac9 < 6.00, idrac8): with configuration changes pending until the next restart, "
    "ImportSystemConfiguration is refused with LC068; pvcctl force-restarts the node's own system once per boot "
    "step (announced like every power step), then waits and sends the import again as for RAC0679",
    "sushy oem/dell manager.py set_virtual_boot_device (reboots once on IDRAC_CONFIG_PENDING) and utils.py "
    "reboot_system",
)

# NOTE(dell): outstanding Lifecycle Controller jobs can break virtual media, and some tools clear the whole
# job queue before a boot (openshift-docs PR 41084, BZ 1988879; jetlag dell-clear-jobs.yml). pvcctl does not:
# the queue holds other people's staged BIOS/RAID/iDRAC changes, and clearing it throws them away (the forced
# clear also restarts the Lifecycle Controller). It waits for a running job (RAC0679), applies pending ones by
# the one restart (LC068), and its errors name the Job Queue for the admin to clear.

IDRAC9_OLD = VendorProfile(
    name="dell-idrac9-old",
    vendor=Vendor.DELL,
    service_tag_in_sku=True,
    cd_boot_dell_oem=True,
    quirks=(*IDRAC9.quirks, _DELL_OEM_CD_BOOT, _DELL_JOB_RUNNING, _DELL_CONFIG_PENDING),
)

IDRAC8 = VendorProfile(
    name="dell-idrac8",
    vendor=Vendor.DELL,
    service_tag_in_sku=True,
    cd_boot_dell_oem=True,
    quirks=(
        Quirk("NOTE(dell/idrac8): 2.x firmware (13G); virtual media under Managers/iDRAC.Embedded.1",
              "ironic drac/boot.py _get_idrac_version_from_model; dell/iDRAC-Redfish-Scripting issue 265"),
        *IDRAC9.quirks[1:],
        _DELL_OEM_CD_BOOT,
        _DELL_JOB_RUNNING,
        _DELL_CONFIG_PENDING,
    ),
)

IDRAC10 = VendorProfile(
    name="dell-idrac10",
    vendor=Vendor.DELL,
    media_slot_ids=("1",),
    service_tag_in_sku=True,
    quirks=(
        Quirk("NOTE(dell/idrac10): only virtual media slot 1 works", "ironic bug 2125571"),
        Quirk("NOTE(dell/idrac10): power On answers 409 for about 60 s after a power-off; pvcctl retries "
              "the conflict until the step deadline", "ironic commit 238c9e0cc"),
        Quirk("NOTE(dell/idrac10): firmware numbering restarted at 1.x; the manager's Model says 17G",
              "ironic drac/boot.py _get_idrac_version_from_model"),
        Quirk("NOTE(dell/idrac10): Boot is written through the System's @Redfish.Settings object "
              "(Systems/System.Embedded.1/Settings), which alone lists the allowed override targets; pvcctl "
              "PATCHes that object with its own ETag whenever a System advertises one that carries Boot "
              "(any vendor)",
              "sushy bug 2121895 and releasenote check-for-boot-attrs-in-settingsuri; "
              "dell/iDRAC-Redfish-Scripting issue 324"),
        Quirk("NOTE(dell/idrac10): the Location of a job it has just created answers 404 for a while; pvcctl "
              "reads any BMC's task monitor again on 404 for up to 30 s after the 202 that gave it "
              "(BmcTimings.task_missing_grace), then fails naming the monitor",
              "sushy oem/dell asynchronous.py http_call (max_404_retries 3, retry_404_delay 10 s), commit faaf6cb"),
    ),
)

ILO = VendorProfile(
    name="hpe-ilo",
    vendor=Vendor.HPE,
    eject_body={},
    image_suffix_iso=True,
    quirks=(
        Quirk("NOTE(hpe/ilo5): EjectMedia needs a {} body, else 415", "sushy releasenote fix-eject-media-empty-dict"),
        Quirk("NOTE(hpe/ilo5): boot changes are refused during POST (UnableToModifyDuringSystemPOST); retried",
              "ironic bug 2136275"),
        Quirk("NOTE(hpe/ilo5): the image name must end in .iso", "ironic commit 71f5cfb42, story 2008077"),
    ),
)

SUPERMICRO = VendorProfile(
    name="supermicro",
    vendor=Vendor.SUPERMICRO,
    insert_flags=False,
    image_no_query=True,
    not_connected_is_empty=True,
    cd_boot_target="UsbCd",
    full_boot_object=True,
    quirks=(
        Quirk("NOTE(supermicro/x12): InsertMedia rejects Inserted and WriteProtected", "sushy commit 11a6de2"),
        Quirk("NOTE(supermicro/x12): the virtual CD boot target is UsbCd", "sushy commit f7c873f"),
        Quirk("NOTE(supermicro/x12): Image is not cleared on eject: ConnectedVia NotConnected means empty",
              "ansible-collections/community.general issue 6969, PR 12537"),
        Quirk("NOTE(supermicro/x12): always send BootSourceOverrideEnabled", "ironic story 2008547"),
        Quirk("NOTE(supermicro/x12): virtual media needs a licence (OemLicenseNotPassed, 403)",
              "metal3-docs supported_hardware; jetlag troubleshooting"),
        Quirk("NOTE(supermicro/x12): no ? or = in the image URL", "ironic commit e05f74c62, story 2009278"),
    ),
)

XCC = VendorProfile(
    name="lenovo-xcc",
    vendor=Vendor.LENOVO,
    media_slot_prefixes=("EXT",),
    insert_by_patch=True,
    quirks=(
        Quirk("NOTE(lenovo/xcc): virtual media has no actions: insert and eject by PATCH with Inserted",
              "pubs.lenovo.com xcc-restapi insert_eject_virtual_media_patch"),
        Quirk("NOTE(lenovo/xcc): only EXT1..4 slots take an image (RDOC/Remote do not)",
              "community.general _redfish_utils.py"),
    ),
)

AMI = VendorProfile(
    name="ami-megarac",
    vendor=Vendor.AMI,
    insert_transfer_protocol=True,
    full_boot_object=True,
    quirks=(
        Quirk("NOTE(ami/megarac): InsertMedia requires TransferProtocolType",
              "sushy json_samples transfer_proto_required_error"),
        Quirk("NOTE(ami/megarac): send the full boot object (Target, Enabled, Mode) each time",
              "ironic bug 2073518, VENDORS_REQUIRING_FULL_BOOT_REQUEST"),
    ),
)

OPENBMC = VendorProfile(
    name="openbmc",
    vendor=Vendor.OPENBMC,
    insert_transfer_protocol=True,
    image_https_only=True,
    quirks=(
        Quirk("NOTE(openbmc/bmcweb): the image must be https:// (or smb://); plain HTTP is rejected",
              "openbmc/bmcweb redfish-core/lib/virtual_media.hpp"),
    ),
)

DGX = VendorProfile(
    name="nvidia-dgx",
    vendor=Vendor.NVIDIA,
    insert_transfer_protocol=True,
    quirks=(
        Quirk("NOTE(nvidia/dgx): InsertMedia demands UserName and Password even for an anonymous HTTP image "
              "(ActionParameterMissing, at times without error.code); pvcctl sends it again with the "
              "placeholder image credentials none/none, never the BMC's",
              "sushy bug 2071945, virtual_media.py is_credentials_required; openshift/ironic-image PR 819"),
        Quirk("NOTE(nvidia/dgx): an AMI MegaRAC BMC: InsertMedia requires TransferProtocolType",
              "sushy json_samples transfer_proto_required_error"),
    ),
)

PROFILES = (STANDARD, IDRAC8, IDRAC9_OLD, IDRAC9, IDRAC10, ILO, SUPERMICRO, XCC, AMI, OPENBMC, DGX)


def _major(firmware: str) -> int:
    found = re.search(r"(\d+)\.\d+", firmware)
    return int(found.group(1)) if found else 0


def _dell_profile(manager_model: str, firmware: str) -> VendorProfile:
    # The manager's Model starts with the PowerEdge generation ("14G Monolithic"): 12-13G iDRAC 8,
    # 14-16G iDRAC 9, 17G on iDRAC 10 (ironic drac/boot.py). Without it, the firmware: iDRAC 10 is 1.x,
    # iDRAC 7/8 2.x (their 1.x had no Redfish), iDRAC 9 3.x and up.
    found = re.match(r"\s*(\d\d)G\b", manager_model)
    generation = int(found.group(1)) if found else 0
    major = _major(firmware)
    if generation > 16 or (not generation and major < 2):
        return IDRAC10
    if generation in (12, 13) or (not generation and major == 2):
        return IDRAC8
    return IDRAC9_OLD if major < DELL_STANDARD_CD_BOOT_FROM else IDRAC9


def select_profile(*, service_vendor: str, manufacturer: str, model: str, firmware: str,
                   manager_model: str = "") -> VendorProfile:
    """The profile for a BMC, from what its service root, system and manager say."""
    vendor = service_vendor.lower()
    maker = manufacturer.lower()
    if "openbmc" in vendor or "openbmc" in model.lower():
        return OPENBMC
    # NOTE(nvidia/dgx): an AMI BMC, told apart by the system's maker and model.
    if "nvidia" in maker and "dgx" in model.lower():
        return DGX
    # NOTE(dell/gb200): "Dell" systems with AMI BMCs: the service root's Vendor wins (ironic bug 2143027).
    if vendor in ("ami", "american megatrends", "american megatrends international", "asrockrack"):
        return AMI
    if "dell" in maker or vendor == "dell":
        return _dell_profile(manager_model, firmware)
    if maker.startswith(("hpe", "hp ", "hewlett")) or maker == "hp" or vendor == "hpe":
        return ILO
    if "supermicro" in maker or vendor == "supermicro":
        return SUPERMICRO
    if "lenovo" in maker or vendor == "lenovo":
        return XCC
    if "megatrends" in maker or maker in ("ami", "asrockrack"):
        return AMI
    return STANDARD
