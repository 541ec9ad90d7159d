"""What a cluster keeps between runs, under `controller.state_dir/<cluster>/`.

Every run (deploy, retry, render, ISO build) of one cluster reads the same state, so they agree on
the controller's SSH key that the nodes trust.
"""

from __future__ import annotations

from pathlib import Path

from core.keys import ssh_key_pair
from inventory.model import Cluster


def cluster_dir(cluster: Cluster) -> Path:
    """The cluster's own directory: its state, and a directory per run."""
    return cluster.controller.state_dir / cluster.name


def controller_key(cluster: Cluster) -> tuple[Path, str]:
    """The controller's SSH key (the inventory's, or one made once in the cluster's directory):
    the private key's path and the public key line."""
    path = cluster.controller.ssh_key or cluster_dir(cluster) / "controller_ed25519"
    return ssh_key_pair(path, comment=f"pvcctl@{cluster.name}", what="controller.ssh_key")
