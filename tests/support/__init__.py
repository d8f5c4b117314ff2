"""Test helpers shared across the suite: a real sshd standing in for the VM, a flaky TCP proxy."""
