"""Framework backends: build the network a spec describes. Imported lazily, never by the core."""
