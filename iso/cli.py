"""`pvcctl iso`: build the live installer ISO, or give an existing one a new seed."""

from __future__ import annotations

import signal
from pathlib import Path

import typer

from iso.errors import IsoUserError
from iso.seed import Seed, SeedError

app = typer.Typer(no_args_is_help=True, help="Build the live installer ISO, or give one a new seed.")

DEFAULT_CACHE = Path("/var/cache/pvcctl/iso")


def _load_seed(inventory: Path | None, seed_file: Path | None) -> tuple[Seed | None, str | None, str | None]:
    """The seed, and the mirror and apt proxy the inventory asks for (None = defaults)."""
    if inventory is not None and seed_file is not None:
        raise IsoUserError("give an inventory or --seed, not both")
    if seed_file is not None:
        try:
            return Seed.load(seed_file), None, None
        except OSError as err:
            raise IsoUserError(f"cannot read the seed {seed_file}: {err.strerror}") from None
        except SeedError as err:
            raise IsoUserError(f"{seed_file}: {err}") from None
    if inventory is None:
        return None, None, None
    # The same seed and controller key `pvcctl deploy` uses, so its nodes trust this ISO's controller.
    from inventory.load import load_inventory
    from inventory.state import controller_key
    from iso.inventory_seed import seed_for

    cluster = load_inventory(inventory)
    first = cluster.nodes[0].install if cluster.nodes else None
    seed = seed_for(cluster, controller_key(cluster)[1])
    return seed, first.mirror if first else None, first.apt_proxy if first else None


@app.command("build", epilog="Examples:\n\n  pvcctl iso build inventory.yml -o pvc-installer.iso\n\n"
                             "  pvcctl iso build --seed seed.json --json")
def build(
    inventory: Path | None = typer.Argument(None, metavar="[INVENTORY]",
                                            help="Inventory whose controller and nodes make the seed."),
    output: Path = typer.Option(Path("pvc-installer.iso"), "-o", "--output", metavar="PATH",
                                help="Where to write the ISO."),
    seed_file: Path | None = typer.Option(None, "--seed", metavar="FILE",
                                          help="A seed JSON file instead of an inventory."),
    mirror: str | None = typer.Option(None, "--mirror", metavar="URL",
                                      help="Debian mirror URL (default: this machine's apt)."),
    proxy: str | None = typer.Option(None, "--proxy", metavar="URL",
                                     help="HTTP proxy for apt and debootstrap (apt-cacher-ng)."),
    cache: Path = typer.Option(DEFAULT_CACHE, "--cache", metavar="DIR", help="Build cache directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Build the live installer ISO (as root); every stage is cached by the content of its inputs."""
    from iso.build import HOST_KEY_SUFFIX, build_iso
    from iso.cache import PRUNE_AFTER_DAYS

    # A SIGTERM (systemd, CI timeouts) unwinds like Ctrl-C, so the chroot's mounts are undone.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    seed, inventory_mirror, inventory_proxy = _load_seed(inventory, seed_file)
    report = build_iso(cache, output, seed=seed, mirror=mirror or inventory_mirror, proxy=proxy or inventory_proxy)
    if as_json:
        typer.echo(report.to_json(), nl=False)
        return
    for stage in report.stages:
        typer.echo(f"  {stage.name:<12} {'cached' if stage.cached else f'{stage.seconds:7.1f} s'}")
    if report.pruned:
        typer.echo(f"  pruned {len(report.pruned)} stage outputs no build used for {PRUNE_AFTER_DAYS} days")
    typer.echo(f"ISO: {report.iso}\nlive SSH host key: {report.host_key_fingerprint} "
               f"(in {report.iso}{HOST_KEY_SUFFIX})")


@app.command("seed", epilog="Example:\n\n  pvcctl iso seed pvc-installer.iso seed.json -o site2.iso")
def reseed(
    base_iso: Path = typer.Argument(..., metavar="BASE_ISO", help="An ISO made by pvcctl iso build."),
    seed_file: Path = typer.Argument(..., metavar="SEED", help="The new seed (JSON)."),
    output: Path = typer.Option(..., "-o", "--output", metavar="PATH", help="Where to write the new ISO."),
) -> None:
    """Copy an ISO with a new seed, in about a second (nothing is rebuilt)."""
    from iso.build import HOST_KEY_SUFFIX
    from iso.seed import write_iso_with_seed

    seed, _, _ = _load_seed(None, seed_file)
    assert seed is not None
    write_iso_with_seed(base_iso, seed, output)
    key_file = Path(f"{base_iso}{HOST_KEY_SUFFIX}")
    if key_file.is_file():  # same live root, same host key
        Path(f"{output}{HOST_KEY_SUFFIX}").write_text(key_file.read_text())
    typer.echo(f"ISO: {output}")
