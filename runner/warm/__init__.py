"""Warm mode: the fork server (`server`, standard library only) and the runner's side (`pool`)."""
