"""Getting bundles onto devices: Mender artifacts and update module (fleets), ssh (one device), device status.

Only the device side (edgekit.runtime, edgekit.bundle, edgekit.profiles) is imported: the update module
and `edgekit device` run on devices without the training stack.
"""
