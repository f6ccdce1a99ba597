"""The package version (one place; the package root, the server and export manifests read it)."""

__version__ = "0.2.0"
