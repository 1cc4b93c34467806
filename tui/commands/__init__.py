"""The `whatif` subcommands, one module each. Each module has `add(subparsers)` and `run(args) -> int`."""
