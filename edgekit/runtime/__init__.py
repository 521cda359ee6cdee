"""Device side: inference engine, stream windows, payload parsing, the MQTT daemon.

Imports only numpy, onnxruntime, paho-mqtt and small pure-Python packages (tests/test_import_purity.py).
"""
