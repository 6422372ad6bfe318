"""A minimal PNG encoder (8-bit grey, RGB or RGBA) with :mod:`zlib`: no imaging library needed.

The file layout is that of the PNG specification (W3C Recommendation, Portable Network Graphics
Specification, 2nd ed., 2003; ISO/IEC 15948): the 8-byte signature, then chunks of
``length · type · data · CRC-32`` — ``IHDR`` (width, height, bit depth 8, colour type,
compression 0, filter method 0, no interlace), one ``IDAT`` holding the zlib stream of the
scanlines, each prefixed by its filter type byte (0, "None"), and ``IEND``.
"""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Final

import numpy as np
import numpy.typing as npt

from immunopet.errors import InputError

__all__ = ["encode_png", "png_data_uri"]

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
#: PNG colour type by the number of channels: grey, grey + alpha, RGB, RGBA.
_COLOUR_TYPE: Final = {1: 0, 2: 4, 3: 2, 4: 6}
_BIT_DEPTH: Final = 8
#: zlib compression level (9: smallest file; the images of a report are small).
_COMPRESSION_LEVEL: Final = 9


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One chunk: big-endian length, type, data and the CRC-32 of type + data."""
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """Encode an 8-bit image as a PNG file.

    Parameters
    ----------
    pixels : numpy.ndarray of uint8, shape (height, width) or (height, width, channels)
        Row 0 is the top of the image. ``channels``: 1 (grey), 2 (grey + alpha), 3 (RGB) or
        4 (RGBA).

    Returns
    -------
    bytes
        The PNG file (signature, IHDR, one IDAT, IEND).

    Raises
    ------
    InputError
        Not uint8, an empty image, or an unsupported shape.

    Examples
    --------
    >>> import numpy as np
    >>> data = encode_png(np.array([[0, 255], [128, 64]], dtype=np.uint8))
    >>> data[:8] == PNG_SIGNATURE, data[12:16], len(data)
    (True, b'IHDR', 71)

    """
    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        raise InputError(f"PNG pixels must be uint8, got {array.dtype}", field="pixels")
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if array.ndim != 3 or array.shape[2] not in _COLOUR_TYPE or 0 in array.shape:
        raise InputError(
            f"PNG pixels must have shape (height, width) or (height, width, 1-4), got "
            f"{np.shape(pixels)}",
            field="pixels",
        )
    height, width, channels = (int(n) for n in array.shape)
    scanlines = np.zeros((height, 1 + width * channels), dtype=np.uint8)  # filter byte 0
    scanlines[:, 1:] = array.reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, _BIT_DEPTH, _COLOUR_TYPE[channels], 0, 0, 0)
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), _COMPRESSION_LEVEL)),
            _chunk(b"IEND", b""),
        )
    )


def png_data_uri(pixels: npt.NDArray[np.uint8]) -> str:
    """The image as a ``data:image/png;base64,…`` URI, to inline in HTML (see :func:`encode_png`)."""
    return "data:image/png;base64," + base64.b64encode(encode_png(pixels)).decode("ascii")
