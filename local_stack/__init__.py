"""The whole stack offline: template.yaml deployed into an embedded AWS emulator (moto server)."""
