"""Mirror lookup from apt sources, the content-keyed cache and atomic outputs (fast)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from core.mirror import MirrorError, host_mirrors, resolve_mirrors
from iso.cache import atomic_output, content_key, prune_stages, remove_tree
from iso.errors import BuildError, IsoUserError
from iso.tools import require_tools


def _apt(tmp_path: Path, sources: str | None = None, listing: str | None = None) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    if sources is not None:
        (tmp_path / "sources.list.d/debian.sources").write_text(sources)
    if listing is not None:
        (tmp_path / "sources.list").write_text(listing)
    return tmp_path


def test_deb822_sources_give_archive_and_security(tmp_path: Path) -> None:
    apt = _apt(tmp_path, sources=(
        "Types: deb\nURIs: http://mirror.test/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb-src\nURIs: http://src.test/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.test/debian-security\nSuites: bookworm-security\nComponents: main\n"))
    mirrors = host_mirrors(apt)
    assert mirrors.debian == "http://mirror.test/debian"
    assert mirrors.security == "http://mirror.test/debian-security"


def test_one_line_sources_with_options(tmp_path: Path) -> None:
    apt = _apt(tmp_path, listing="# comment\ndeb [arch=amd64] http://m.test/debian bookworm main\n"
                                 "deb http://m.test/sec bookworm-security main\n")
    assert host_mirrors(apt).debian == "http://m.test/debian"
    assert host_mirrors(apt).security == "http://m.test/sec"


def test_no_mirror_and_bad_mirror_are_user_errors(tmp_path: Path) -> None:
    apt = _apt(tmp_path)
    with pytest.raises(MirrorError, match="--mirror"):
        host_mirrors(apt)
    with pytest.raises(MirrorError, match="http"):
        resolve_mirrors("mirror.test/debian", apt)
    assert resolve_mirrors("http://given.test/debian/", apt).debian == "http://given.test/debian"


def test_content_key_follows_file_content(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.py").write_text("one")
    first = content_key("x", tree, ("p", "q"))
    assert content_key("x", tree, ("p", "q")) == first
    (tree / "a.py").write_text("two")
    assert content_key("x", tree, ("p", "q")) != first
    assert content_key("x", ("p", "q")) != content_key("x", ("pq",))


def test_failed_output_leaves_the_previous_file(tmp_path: Path) -> None:
    final = tmp_path / "out.iso"
    final.write_text("good")
    with pytest.raises(RuntimeError), atomic_output(final) as partial:
        partial.write_text("half")
        raise RuntimeError("interrupted")
    assert final.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["out.iso"]
    with atomic_output(final) as partial:
        partial.write_text("new")
    assert final.read_text() == "new"


def test_remove_tree_refuses_a_tree_with_a_mount_inside(tmp_path: Path) -> None:
    inner = tmp_path / "root" / "dev"
    inner.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(inner)], check=True)
    try:
        with pytest.raises(BuildError, match="still mounted"):
            remove_tree(tmp_path / "root")
        assert inner.is_dir()
    finally:
        subprocess.run(["umount", str(inner)], check=True)
    remove_tree(tmp_path / "root")
    assert not (tmp_path / "root").exists()


def test_missing_tools_name_their_packages() -> None:
    from iso import tools

    tools.BUILD_TOOLS["pvcctl-no-such-tool"] = "pvcctl-no-such-package"
    try:
        with pytest.raises(IsoUserError, match="apt-get install pvcctl-no-such-package"):
            require_tools(("mksquashfs", "pvcctl-no-such-tool"))
    finally:
        del tools.BUILD_TOOLS["pvcctl-no-such-tool"]


def test_prune_deletes_only_stage_outputs_unused_for_weeks(tmp_path: Path) -> None:
    now = time.time()
    month_ago = now - 30 * 86400

    def made(name: str, mtime: float, directory: bool = False) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if directory:
            path.mkdir()
            (path / "filesystem.squashfs").write_bytes(b"x")
        else:
            path.write_bytes(b"x")
        os.utime(path, (mtime, mtime))
        return path

    in_use = made("target/target-current.squashfs", month_ago)  # old file, but this build's
    stale = made("target/target-old.squashfs", month_ago)
    stale_dir = made("live/oldkey", month_ago, directory=True)
    recent = made("overlay/zz-pvc-recent.squashfs", now - 86400)
    used_lately = made("boot/efiboot-other.img", month_ago)  # old mtime, but another setup used it lately
    partial = made("target/.target-x.squashfs.partial-123", month_ago)
    elsewhere = made("logs/build.log", month_ago)  # not a stage directory: never touched
    (tmp_path / "used.json").write_text(json.dumps({"boot/efiboot-other.img": now - 3600}))

    removed = prune_stages(tmp_path, [in_use], now=now)

    assert sorted(removed) == sorted([stale, stale_dir])
    assert not stale.exists() and not stale_dir.exists()
    assert all(p.exists() for p in (in_use, recent, used_lately, partial, elsewhere))
    ledger = json.loads((tmp_path / "used.json").read_text())
    assert ledger["target/target-current.squashfs"] == now and "target/target-old.squashfs" not in ledger
    # a month later, nothing used since: all but what that build uses goes
    later = prune_stages(tmp_path, [in_use], now=now + 30 * 86400)
    assert sorted(later) == sorted([recent, used_lately])
