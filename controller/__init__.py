"""pvcctl's controller: the orchestrator, its servers and the command line."""

__version__ = "0.1.0"
