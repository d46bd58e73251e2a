"""Generation backends behind `core.protocols.Generator`, one small module each. Heavy imports happen in
`load()`, never at import time; `rag.build_generation.build_generator` chooses one from the domain config."""
