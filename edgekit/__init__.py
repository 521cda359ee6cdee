"""edgekit: distil a model, export it for edge targets, bundle it, serve it over MQTT, benchmark it."""

__version__ = "0.1.0"
