"""Not a package anyone imports: mypy reads engine/ and tui/ through the links here under their installed
names (whatif.engine, whatif.tui); see [tool.mypy] in pyproject.toml."""
