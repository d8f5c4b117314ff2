"""The offline plan: the Pulumi program evaluated under mocks, with no cloud account or CLI."""
