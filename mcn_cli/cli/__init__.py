"""The command line: Typer commands only, options → action → text or JSON."""
