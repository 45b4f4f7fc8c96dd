"""mcn: a command-line toolkit for Belgian pharmacies and tarification offices on MyCareNet."""

__version__ = "0.1.0"
