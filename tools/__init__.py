"""semantic-dns: tools package."""
