"""Pieces of the daemon's supervisor: restart policy, heartbeats, systemd notify, the child entry point."""
