"""Host-side scripts: the daemon demo and helpers shared by its tests and benchmark."""
