"""Vendor personalities of the lab BMC: where each family puts things and which quirks it shows.

Each personality reproduces what controller/bmc/quirks.py works around, so a test of a quirk runs
against a BMC that really has it. Time windows are the real ones in seconds; the emulator scales
them with its `time_scale` so tests do not wait a minute for an iDRAC 10 to stop saying 409.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.secure_boot import SecureBootStyle


@dataclass(frozen=True)
class SlotSpec:
    id: str
    media_types: tuple[str, ...]
    actions: bool = True  # offers InsertMedia/EjectMedia (else PATCH only, if `patch_insert`)
    patch_insert: bool = False
    takes_images: bool = True  # a KVM-only slot answers 400 to an insert


@dataclass(frozen=True)
class Personality:
    name: str
    manufacturer: str
    model: str
    firmware: str
    service_vendor: str = ""
    manager_model: str = ""  # the Manager's Model (Dell: "14G Monolithic"); else the personality's name
    system_id: str = "1"
    manager_id: str = "1"
    media_under: str = "Systems"  # or "Managers"
    slots: tuple[SlotSpec, ...] = (SlotSpec("CD1", ("CD", "DVD")), SlotSpec("USB1", ("USBStick",)))
    boot_targets: tuple[str, ...] = ("None", "Pxe", "Cd", "Hdd", "UefiShell")
    max_sessions: int = 16
    eject_lingers: float = 0.0  # NOTE(dell/idrac9): slot still reads inserted, insert gets 500
    poweron_conflict_after_off: float = 0.0  # NOTE(dell/idrac10): 409 on On after a power-off
    refuse_during_post: float = 0.0  # NOTE(hpe/ilo5): boot and media changes refused after power-on
    eject_needs_body: bool = False  # NOTE(hpe/ilo5): 415 without a {} body
    image_must_end_iso: bool = False  # NOTE(hpe/ilo5)
    rejects_insert_flags: bool = False  # NOTE(supermicro): Inserted/WriteProtected are unknown
    not_connected_after_eject: bool = False  # NOTE(supermicro): Image and Inserted stay after eject
    needs_transfer_protocol: bool = False  # NOTE(ami/megarac), NOTE(openbmc)
    full_boot_object: bool = False  # NOTE(ami/megarac): Target, Enabled and Mode every time
    https_images_only: bool = False  # NOTE(openbmc)
    insert_returns_task: bool = False  # 202 + task monitor (Dell jobs style)
    cd_override_boots_physical: bool = False  # NOTE(dell/idrac9 < 6.00, idrac8): Cd boots the physical drive
    dell_scp_import: bool = False  # Dell OEM ImportSystemConfiguration (ServerBoot.1 attributes) as a job
    # NOTE(dell/idrac10): a just-created job's Location answers 404 to its first reads. The lab counts
    # reads, not seconds, so a loaded test machine sees the same answers.
    new_task_404_reads: int = 0
    boot_in_settings: bool = False  # NOTE(dell/idrac10): Boot is written through Systems/{id}/Settings only
    insert_needs_credentials: bool = False  # NOTE(nvidia/dgx): UserName/Password even for an anonymous image
    service_tag: str = ""  # Dell: SKU holds the service tag
    # Systems/{id}/SecureBoot: how it is served (lab/secure_boot.py), its mode, the message a PATCH gets
    secure_boot: SecureBootStyle = SecureBootStyle.STANDARD
    secure_boot_mode: str = "DeployedMode"  # what sushy-tools serves, and Dell R6525/R740 iDRAC 9 report
    secure_boot_reset_message: str = ""
    extra_boot: dict[str, object] = field(default_factory=dict)


STANDARD = Personality("standard", "Contoso", "Standard Server", "1.0.0")

# NOTE(dell/idrac9): SecureBootEnable changes by a BIOS job at the next reset (ironic commit 6487b958).
DELL_SECURE_BOOT = SecureBootStyle.AT_RESET

IDRAC9 = Personality(
    "idrac9", "Dell Inc.", "PowerEdge R650", "6.10.30.00",
    service_vendor="Dell", manager_model="15G Monolithic", system_id="System.Embedded.1", manager_id="iDRAC.Embedded.1",
    slots=(SlotSpec("1", ("CD", "DVD", "USBStick")), SlotSpec("2", ("CD", "DVD", "USBStick"))),
    max_sessions=8, eject_lingers=3.0, insert_returns_task=True, service_tag="7XK2M93", dell_scp_import=True,
    secure_boot=DELL_SECURE_BOOT,
)

IDRAC9_OLD = Personality(
    "idrac9-old", "Dell Inc.", "PowerEdge R640", "5.10.50.00",
    service_vendor="Dell", manager_model="14G Monolithic", system_id="System.Embedded.1", manager_id="iDRAC.Embedded.1",
    media_under="Managers",
    slots=(SlotSpec("CD", ("CD", "DVD")), SlotSpec("RemovableDisk", ("USBStick",))),
    max_sessions=8, eject_lingers=3.0, service_tag="4HQ1L22",
    cd_override_boots_physical=True, dell_scp_import=True, secure_boot=DELL_SECURE_BOOT,
)

# iDRAC 8 (13G): 2.x firmware, virtual media under the Manager, the same boot behaviour as iDRAC 9 < 6.00.
IDRAC8 = Personality(
    "idrac8", "Dell Inc.", "PowerEdge R630", "2.83.83.83",
    service_vendor="Dell", manager_model="13G Monolithic", system_id="System.Embedded.1", manager_id="iDRAC.Embedded.1",
    media_under="Managers",
    slots=(SlotSpec("CD", ("CD", "DVD")), SlotSpec("RemovableDisk", ("USBStick",))),
    max_sessions=8, eject_lingers=3.0, service_tag="2MBR842",
    cd_override_boots_physical=True, dell_scp_import=True, secure_boot=DELL_SECURE_BOOT,
)

IDRAC10 = Personality(
    "idrac10", "Dell Inc.", "PowerEdge R770", "1.20.10.00",
    service_vendor="Dell", manager_model="17G Monolithic", system_id="System.Embedded.1", manager_id="iDRAC.Embedded.1",
    slots=(SlotSpec("1", ("CD", "DVD", "USBStick")), SlotSpec("2", ("CD", "DVD", "USBStick"), takes_images=False)),
    max_sessions=8, poweron_conflict_after_off=60.0, service_tag="9ZT4B01", boot_in_settings=True,
    dell_scp_import=True, new_task_404_reads=2, secure_boot=DELL_SECURE_BOOT,
)

ILO = Personality(
    "ilo", "HPE", "ProLiant DL360 Gen10 Plus", "iLO 5 v2.72", service_vendor="HPE",
    media_under="Managers",
    slots=(SlotSpec("1", ("Floppy", "USBStick")), SlotSpec("2", ("CD", "DVD"))),
    refuse_during_post=20.0, eject_needs_body=True, image_must_end_iso=True,
    # NOTE(hpe/ilo5): a DL380 Gen10 reports UserMode; a PATCH is answered with SystemResetRequired
    secure_boot_mode="UserMode", secure_boot_reset_message="iLO.2.14.SystemResetRequired",
)

SUPERMICRO = Personality(
    "supermicro", "Supermicro", "SYS-120U-TNR", "01.01.06", service_vendor="Supermicro",
    media_under="Managers",
    slots=(SlotSpec("CD1", ("CD", "DVD")), SlotSpec("USB1", ("USBStick",))),
    boot_targets=("None", "Pxe", "Hdd", "UsbCd", "UefiShell"),
    rejects_insert_flags=True, not_connected_after_eject=True, full_boot_object=True,
    secure_boot=SecureBootStyle.LICENSED,  # NOTE(supermicro): 403 OemLicenseNotPassed without the licence
)

XCC = Personality(
    "xcc", "Lenovo", "ThinkSystem SR650", "TEI3A6N-4.10", service_vendor="Lenovo",
    media_under="Managers",
    slots=(
        SlotSpec("RDOC1", ("CD", "DVD"), actions=False, patch_insert=True, takes_images=False),
        SlotSpec("EXT1", ("CD", "DVD"), actions=False, patch_insert=True),
        SlotSpec("EXT2", ("CD", "DVD", "USBStick"), actions=False, patch_insert=True),
    ),
    # NOTE(lenovo/xcc): a PATCH is answered 200 with RebootRequired (its key in Lenovo's doc; the prefix is ours)
    secure_boot_mode="UserMode", secure_boot_reset_message="Lenovo.1.0.RebootRequired",
)

AMI = Personality(
    "ami", "Gigabyte", "R282-Z90", "12.61.21", service_vendor="AMI",
    system_id="Self", manager_id="Self", media_under="Managers",
    slots=(SlotSpec("CD1", ("CD", "DVD")), SlotSpec("CD2", ("CD", "DVD"))),
    needs_transfer_protocol=True, full_boot_object=True,
)

OPENBMC = Personality(
    "openbmc", "Contoso", "OpenBMC Reference", "2.16.0-dev", service_vendor="OpenBMC",
    system_id="system", manager_id="bmc", media_under="Managers",
    slots=(SlotSpec("Slot_0", ("CD", "USBStick"), takes_images=False), SlotSpec("Slot_1", ("CD", "USBStick"))),
    needs_transfer_protocol=True, https_images_only=True,
    secure_boot=SecureBootStyle.NONE,  # the lab's BMC without the resource (not a claim about every OpenBMC)
)

# NVIDIA DGX H100: an AMI MegaRAC BMC (TransferProtocolType) that also wants image credentials.
DGX = Personality(
    "dgx", "NVIDIA", "DGXH100", "24.09.17", service_vendor="AMI",
    system_id="DGX", manager_id="BMC", media_under="Managers",
    slots=(SlotSpec("CD1", ("CD", "DVD")), SlotSpec("USB1", ("USBStick",))),
    needs_transfer_protocol=True, insert_needs_credentials=True,
)

PERSONALITIES = {p.name: p for p in (STANDARD, IDRAC8, IDRAC9, IDRAC9_OLD, IDRAC10, ILO, SUPERMICRO, XCC, AMI,
                                     OPENBMC, DGX)}
