"""The Vigil server: FastAPI routes -> services -> repositories. Never imports `vigil.client`."""
