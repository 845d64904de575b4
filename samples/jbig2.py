"""A small JBIG2 encoder (ITU-T T.88), enough to make the two kinds of JBIG2 streams office scanners
put in PDFs, since Debian packages no encoder:

- a generic region coded with MMR (the page as one bitmap, CCITT G4 coding inside JBIG2);
- a symbol dictionary in the PDF's ``/JBIG2Globals`` and a text region on the page that places its
  symbols (the compact "symbol mode" of multifunction scanners): here the symbols are the page's
  distinct 32 x 32 tiles, Huffman-coded with the standard tables of Annex B, bitmaps uncompressed.

Streams are in PDF's embedded form: segments without the file header. Test data only.
"""

from __future__ import annotations

import struct

import numpy as np
from PIL import Image

# Standard Huffman tables (T.88 Annex B) as (PREFLEN, RANGELEN, RANGELOW, kind) lines; kind is
# "" for a range line, "high" for the upper range line, "oob" for out-of-band. Lines whose
# PREFLEN is 0 are unused and left out.
B1 = [(1, 4, 0, ""), (2, 8, 16, ""), (3, 16, 272, ""), (3, 32, 65808, "high")]
B2 = [(1, 0, 0, ""), (2, 0, 1, ""), (3, 0, 2, ""), (4, 3, 3, ""), (5, 6, 11, ""),
      (6, 32, 75, "high"), (6, 0, 0, "oob")]  # fmt: skip
B4 = [(1, 0, 1, ""), (2, 0, 2, ""), (3, 0, 3, ""), (4, 3, 4, ""), (5, 6, 12, ""),
      (5, 32, 76, "high")]  # fmt: skip
B6 = [(5, 10, -2048, ""), (4, 9, -1024, ""), (4, 8, -512, ""), (4, 7, -256, ""), (5, 6, -128, ""),
      (5, 5, -64, ""), (4, 5, -32, ""), (2, 7, 0, ""), (3, 7, 128, ""), (3, 8, 256, ""),
      (4, 9, 512, ""), (4, 10, 1024, ""), (6, 32, -2049, "low"), (6, 32, 2048, "high")]  # fmt: skip
B8 = [(8, 3, -15, ""), (9, 1, -7, ""), (8, 1, -5, ""), (9, 0, -3, ""), (7, 0, -2, ""),
      (4, 0, -1, ""), (2, 1, 0, ""), (5, 0, 2, ""), (6, 0, 3, ""), (3, 4, 4, ""), (6, 1, 20, ""),
      (4, 4, 22, ""), (4, 5, 38, ""), (5, 6, 70, ""), (5, 7, 134, ""), (6, 7, 262, ""),
      (7, 8, 390, ""), (6, 10, 646, ""), (9, 32, -16, "low"), (9, 32, 1670, "high"),
      (2, 0, 0, "oob")]  # fmt: skip
B11 = [(1, 0, 1, ""), (2, 1, 2, ""), (4, 0, 3, ""), (4, 1, 5, ""), (5, 1, 7, ""), (5, 2, 9, ""),
       (6, 2, 13, ""), (7, 2, 17, ""), (7, 3, 21, ""), (7, 4, 29, ""), (7, 5, 45, ""),
       (7, 6, 77, ""), (7, 32, 141, "high")]  # fmt: skip


def canonical(lengths: list[int]) -> list[int]:
    """Prefix codes from code lengths (T.88 B.3): shorter first, table order within a length."""
    maxlen = max(lengths)
    count = [0] * (maxlen + 1)
    for n in lengths:
        if n:
            count[n] += 1
    codes = [0] * len(lengths)
    first = 0
    for cur in range(1, maxlen + 1):
        first = (first + count[cur - 1]) << 1 if cur > 1 else 0
        code = first
        for i, n in enumerate(lengths):
            if n == cur:
                codes[i] = code
                code += 1
    return codes


class Bits:
    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, width: int) -> None:
        for i in range(width - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                self.acc, self.n = 0, 0

    def align(self) -> None:
        if self.n:
            self.put(0, 8 - self.n)

    def raw(self, data: bytes) -> None:
        assert self.n == 0
        self.out += data

    def bytes(self) -> bytes:
        self.align()
        return bytes(self.out)


class Table:
    def __init__(self, lines: list[tuple[int, int, int, str]]) -> None:
        self.lines = lines
        self.codes = canonical([ln[0] for ln in lines])

    def put(self, bits: Bits, value: int | None) -> None:
        for (plen, rlen, low, kind), code in zip(self.lines, self.codes, strict=True):
            if value is None:
                if kind == "oob":
                    bits.put(code, plen)
                    return
                continue
            if kind == "" and low <= value < low + (1 << rlen):
                bits.put(code, plen)
                bits.put(value - low, rlen)
                return
            if kind == "high" and value >= low:
                bits.put(code, plen)
                bits.put(value - low, 32)
                return
            if kind == "low" and value <= low:
                bits.put(code, plen)
                bits.put(low - value, 32)
                return
        raise ValueError(f"{value} not codable")


def segment(number: int, kind: int, page: int, data: bytes, refers: tuple[int, ...] = ()) -> bytes:
    """A segment header (7.2) and its data."""
    assert len(refers) <= 4 and number < 256
    head = struct.pack(">IB", number, kind) + bytes([len(refers) << 5])
    head += bytes(refers) + bytes([page]) + struct.pack(">I", len(data))
    return head + data


def _page_info(w: int, h: int) -> bytes:
    return struct.pack(">IIIIBH", w, h, 0, 0, 0, 0)


def _region_info(w: int, h: int) -> bytes:
    return struct.pack(">IIIIB", w, h, 0, 0, 0)


def generic_region(size: tuple[int, int], mmr: bytes) -> bytes:
    """A page of ``size`` as one generic region whose data ``mmr`` is CCITT G4 coding (0 = white,
    as :func:`samples.scans.ccitt` gives it), no globals."""
    w, h = size
    data = _region_info(w, h) + b"\x01" + mmr  # flags: MMR = 1
    return segment(0, 48, 1, _page_info(w, h)) + segment(1, 38, 1, data)


TILE = 32


def symbol_coded(im: Image.Image) -> tuple[bytes, bytes]:
    """(globals, page stream): the page's distinct non-blank tiles as a symbol dictionary (the
    globals), and a text region drawing each tile where it belongs (the page)."""
    w, h = im.size
    black = np.asarray(im.convert("L")) < 128
    rows, cols = -(-h // TILE), -(-w // TILE)
    padded = np.zeros((rows * TILE, cols * TILE), dtype=bool)
    padded[:h, :w] = black
    symbols: dict[bytes, int] = {}
    bitmaps: list[np.ndarray] = []
    placed: list[list[tuple[int, int]]] = []  # per tile row: (column, symbol id)
    for r in range(rows):
        row = []
        for c in range(cols):
            tile = padded[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
            if not tile.any():
                continue
            key = np.packbits(tile).tobytes()
            if key not in symbols:
                symbols[key] = len(bitmaps)
                bitmaps.append(tile)
            row.append((c, symbols[key]))
        placed.append(row)
    n = len(bitmaps)

    # Symbol dictionary (7.4.2): Huffman, no refinement, one height class, uncompressed bitmaps.
    b = Bits()
    Table(B4).put(b, TILE)  # HCDH: the class is TILE high
    Table(B2).put(b, TILE)  # first DW: TILE wide
    for _ in range(n - 1):
        Table(B2).put(b, 0)
    Table(B2).put(b, None)  # end of the height class
    Table(B1).put(b, 0)  # BMSIZE 0: the collective bitmap follows uncompressed
    b.align()
    collective = np.concatenate(bitmaps, axis=1) if bitmaps else np.zeros((TILE, 0), bool)
    b.raw(np.packbits(collective, axis=1).tobytes())
    Table(B1).put(b, 0)  # export runs: none not exported,
    Table(B1).put(b, n)  # then all n exported
    sd = struct.pack(">HII", 0x0001, n, n) + b.bytes()
    glob = segment(0, 0, 0, sd)

    # Text region (7.4.3): Huffman with tables B.6 (first S), B.8 (delta S), B.11 (delta T).
    instances = sum(len(r) for r in placed)
    t = Bits()
    length = max(1, (n - 1).bit_length())
    runlens = [0] * 35
    runlens[0], runlens[length] = 1, 1  # two run codes of one bit each: "1" means `length`
    for v in runlens:
        t.put(v, 4)
    for _ in range(n):
        t.put(canonical(runlens)[length], 1)
    t.align()
    fs, ds, dt = Table(B6), Table(B8), Table(B11)
    dt.put(t, 1)  # STRIPT starts at -1
    strip_t, first_s = -1, 0
    for r, row in enumerate(placed):
        if not row:
            continue
        dt.put(t, r * TILE - strip_t)
        strip_t = r * TILE
        cur_s = 0
        for k, (c, sid) in enumerate(row):
            s = c * TILE
            if k == 0:
                fs.put(t, s - first_s)
                first_s = s
            else:
                ds.put(t, s - cur_s)
            t.put(sid, length)
            cur_s = s + TILE - 1
        ds.put(t, None)  # end of strip
    flags = 0x0001 | (1 << 4)  # SBHUFF, REFCORNER = top left, one strip a row, OR
    tr = _region_info(w, h) + struct.pack(">HHI", flags, 0x0000, instances) + t.bytes()
    page = segment(1, 48, 1, _page_info(w, h)) + segment(2, 6, 1, tr, refers=(0,))
    return glob, page
