"""Making a venv match a lock: `selection` (what the lock selects for the venv), `scan` (what is
installed), `plan` (the pure diff), `apply` (downloads, builds, installs, removals, repair),
`install` (installer and RECORD removal), `state` (journal and no-op fingerprint)."""
