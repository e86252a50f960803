"""The local payments console: a read-only web view of the local stack."""
