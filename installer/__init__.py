"""The node installer. Runs on the live node with the Python standard library only."""
