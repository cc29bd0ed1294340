"""The `cnnlab` command (`shared.cli.main`): local training and sweeps with torch alone, the service's commands
over HTTP, and the token commands (the only ones that open the database)."""
