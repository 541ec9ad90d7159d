"""The node installer. Runs on the live node with the Python standard library only.

    python3 -m installer                         questions at the console, then the install
    python3 -m installer run PLAN.json           driven by the controller (JSON lines on stdout)
        [--dry-run]                              print every destructive action, touch nothing
        [--simulate DISKS.json [--step-delay S]] recorded disks, run nothing (simulated clusters)
        [--report PATH] [--log PATH] [--target DIR]
    python3 -m installer inspect PLAN.json       the dry run (disk, layout, network) and the hardware, as JSON

Event schema (stable; the controller follows these lines over SSH). Every progress line is one
JSON object:

    {"time": "2026-11-24T18:00:00.000+00:00",   ISO 8601, UTC
     "phase": "plan"|"disk"|"system"|"configure"|"boot"|"finish",
     "step": "validate"|"choose"|"release"|"wipe"|"partition"|"lvm"|"filesystems"|"mount"|"os"|"apt"
             |"files"|"users"|"host-keys"|"bootloader"|"initramfs"|"finish"|"done",
     "percent": 0..100, "message": str, "level": "info"|"error"}

The last line always carries an "event" key, and nothing follows it:

    {"time": ..., "event": "done", "exit_code": 0, "report": {...}}
    {"time": ..., "event": "failed", "exit_code": 2|3|4, "phase": ..., "step": ..., "message": ...,
     "output": "tail of the failed command's output" (exit 4), "field": "plan field" (exit 2)}
    {"time": ..., "event": "stopped", "exit_code": 4, "step": ...}        (--stop-after, tests only)

The report (also written to --report, default /var/log/pvc-install/report.json, so it can be
fetched after a dropped connection): hostname, disk {path, model, vendor, serial, wwn, size,
transport, links}, partitions, volumes, filesystem, method, boot_modes, macs {ifname: mac},
addresses {ifname: [cidr]}, network, ssh_host_keys [OpenSSH public key lines], ssh_host_keys_fake
(true when simulated: throwaway keys), simulated, step_seconds {step: seconds}, log.

Exit codes: 0 installed; 2 bad plan (or bad command line); 3 disk refused (no disk, several, the boot
medium, too small) before anything is touched; 4 a step failed (the failed event names it).
"""
