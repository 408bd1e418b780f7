"""Making a venv match a lock: `selection` (what the lock selects for the venv), `scan` (what is
installed), `plan` (the pure diff), `apply` (downloads, builds, installs, removals, repair),
`install` (installer and RECORD removal), `state` (the journal written, the no-op fingerprint),
`journal` (an interrupted sync's journal read back for the repair), `warm` (a warm sync into an
empty venv from its sealed entry)."""
