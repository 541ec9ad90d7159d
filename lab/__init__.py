"""A lab on one machine: Redfish BMC emulator, simulated and QEMU machines."""
