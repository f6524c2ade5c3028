"""Python 2 pickles, the format of the official CIFAR-10 python batches, for writing fixture files."""

from __future__ import annotations

import io
import pickle
import struct


class Py2Pickler(pickle._Pickler):
    """Pickles ``bytes`` as Python 2 ``str`` (BINSTRING opcodes), as in the official CIFAR-10 files: they load as
    ``str`` with ``encoding="latin1"`` (torchvision) and as ``bytes`` with ``encoding="bytes"`` (the CIFAR page)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def py2_pickle(obj: object) -> bytes:
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()
