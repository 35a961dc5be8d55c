"""logcast disk-receiver service."""
