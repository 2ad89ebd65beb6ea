"""semantic-dns: zones package."""
