"""The lab tests share the BMC tests' fixtures (ISO server, lab factory, HTTP session)."""

from tests.bmc.conftest import http, iso_server, lab_factory

__all__ = ["http", "iso_server", "lab_factory"]
