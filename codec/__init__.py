"""semantic-dns: codec package."""
