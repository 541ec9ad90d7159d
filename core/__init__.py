"""pvcctl's foundation: what every part may import, importing none of them.

    core.errors   the error family (user errors exit 2, operation errors 1) the command line reports
    core.mirror   the Debian mirror this machine's apt uses (pvcctl's default mirror)
    core.keys     SSH key fingerprints and key pairs made once on disk

Above it: inventory/ (the cluster model), iso/ and installer/ (what boots and runs on a node), lab/
(a virtual cluster), controller/ (the deploy), and pvcctl/ (the command line, assembled at the top).
"""
