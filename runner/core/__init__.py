"""The job loop and what it needs per job: discover, claim kits, lease, run, take over, write up."""
