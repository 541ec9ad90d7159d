"""The controller's HTTP server: ISO, check-in, status API and dashboard."""
