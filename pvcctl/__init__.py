"""pvcctl's command line, assembled from the parts: each brings its own sub-commands."""

__version__ = "0.1.0"
