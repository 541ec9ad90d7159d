"""Build the live installer ISO: target image → live root → overlay → boot files → ISO.

Every stage is cached by the content of its inputs under one cache directory; see iso/cache.py.
"""

from __future__ import annotations

from iso.target import build_target_image

__all__ = ["build_target_image"]
