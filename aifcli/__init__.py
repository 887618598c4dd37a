"""aif: all-in-focus photography.

Library API (arrays in, arrays out; I/O at the edges)::

    from aifcli.io import read_image, write_image
    from aifcli.presets import get_preset, match_file

The CLI (``aif``) is a thin layer over these modules.
"""
__version__ = "0.1.0"
