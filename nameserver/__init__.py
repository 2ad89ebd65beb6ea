"""semantic-dns: nameserver package."""
