"""Local state: paths, settings, the encryption vault, the commitment cache, sessions, audit."""
