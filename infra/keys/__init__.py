"""Key rotation: new values, the rotation planner (pure), the Secret Manager and VM edges, the `keys` CLI."""
