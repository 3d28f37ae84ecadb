"""What a result records about where it came from (`provenance`) and pinned revisions (`revcache`)."""
