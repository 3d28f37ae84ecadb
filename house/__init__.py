"""House tools: the doctor, service install and unit files, Slurm/HTCondor scripts, their verbs."""
