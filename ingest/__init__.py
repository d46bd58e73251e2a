"""Load, normalise, de-duplicate and chunk a domain's corpus, incrementally, reporting what was skipped."""
