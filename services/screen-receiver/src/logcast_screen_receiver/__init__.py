"""logcast screen-receiver service."""
