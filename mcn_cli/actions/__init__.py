"""One module per thing a user does: wires domain rules and adapters, prints nothing."""
