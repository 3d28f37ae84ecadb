"""Facts about this machine and when it is free: hardware, GPUs, load, idle policy, pausing."""
