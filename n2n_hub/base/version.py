"""The package's version, in a leaf module so that any layer can name it without importing the package's top."""

VERSION = "0.2.0"
