"""Command-line adapters of library functions whose modules keep a typed Python API."""
