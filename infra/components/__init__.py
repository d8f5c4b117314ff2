"""One Pulumi ComponentResource per logical piece of the stack."""
