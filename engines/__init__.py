"""semantic-dns: engines package."""
