"""pvcctl's controller: the deploy engine, its BMC and SSH clients, and its HTTP server."""
