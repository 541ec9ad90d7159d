"""OVMF for the tests' QEMU machines: plain UEFI, or Secure Boot with Microsoft's keys enrolled.

Debian's ovmf package ships both: OVMF_CODE_4M.secboot.fd enforces Secure Boot (it needs SMM, so a
q35 machine with smm=on and the secure pflash), and OVMF_VARS_4M.ms.fd has Microsoft's UEFI CA in
its db, the key that signs Debian's shim. Each machine gets its own copy of the NVRAM template.
"""

from __future__ import annotations

import shutil
from pathlib import Path

# the same firmware files the virtual lab's machines start (lab/qemu.py)
from lab.qemu import OVMF_CODE as CODE
from lab.qemu import OVMF_SECBOOT_CODE as SECURE_CODE
from lab.qemu import OVMF_SECBOOT_VARS as SECURE_VARS
from lab.qemu import OVMF_VARS as VARS

# EFI global variable SecureBoot: 4 bytes of attributes, then 1 when the firmware enforces Secure Boot
SECURE_BOOT_VAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
# what the kernel prints when it finds the firmware enforcing it (arch/x86/kernel/setup.c)
KERNEL_SAYS_SECURE_BOOT = "Secure boot enabled"


def machine(secure_boot: bool) -> str:
    return "q35,smm=on" if secure_boot else "q35"


def uefi_args(vars_copy: Path, *, secure_boot: bool = False) -> list[str]:
    """QEMU arguments for OVMF with a fresh NVRAM at vars_copy (no boot entries: the firmware boots
    the removable-media path, EFI/BOOT/BOOTX64.EFI)."""
    code, template = (SECURE_CODE, SECURE_VARS) if secure_boot else (CODE, VARS)
    shutil.copyfile(template, vars_copy)
    secure = ["-global", "driver=cfi.pflash01,property=secure,value=on"] if secure_boot else []
    return [*secure, "-drive", f"if=pflash,format=raw,readonly=on,file={code}",
            "-drive", f"if=pflash,format=raw,file={vars_copy}"]
