"""Installing wheels into a venv in installer's shape: `tree` (a wheel unpacked and validated
into the cache, and the one way files leave it), `destination` (installer's source and
destination over a tree), `replay` (installs repeated from what installer did), `wheel`
(scheme, validation, install) and `remove` (distributions taken out by RECORD)."""
