"""Talking to baseboard management controllers (Redfish)."""
