"""Pure rules of the brochure: standard library only, no I/O."""
