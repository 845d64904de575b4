"""PDF files as office scanners and their software write them, made here from a page image: every
image encoding a PDF may hold (JBIG2 with and without global segments, CCITT G3/G4, JPEG,
JPEG 2000, Flate, LZW, RunLength), every colour space (grey, indexed, ICC, CMYK), images placed on
pages of any size, odd metadata, and a text layer beside a scan. Written object by object, so each
file holds exactly the encoding it is named for. Test data, not a production path.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from samples import jbig2

# --- stream encoders ------------------------------------------------------------------------


def lzw(data: bytes) -> bytes:
    """LZWDecode's encoding (PDF 7.4.4: 9-12 bit codes, EarlyChange 1, clear code first)."""
    out = bytearray()
    acc, nbits = 0, 0

    def put(code: int, width: int) -> None:
        nonlocal acc, nbits
        acc = (acc << width) | code
        nbits += width
        while nbits >= 8:
            nbits -= 8
            out.append((acc >> nbits) & 0xFF)
        acc &= (1 << nbits) - 1  # keep only the bits not written yet

    table = {bytes([i]): i for i in range(256)}
    width, nxt = 9, 258
    put(256, width)
    w = b""
    for byte in data:
        wc = w + bytes([byte])
        if wc in table:
            w = wc
            continue
        put(table[w], width)
        table[wc] = nxt
        nxt += 1
        if nxt + 1 > (1 << width) and width < 12:  # EarlyChange: widen one code early
            width += 1
        if nxt >= 4094:
            put(256, width)
            table = {bytes([i]): i for i in range(256)}
            width, nxt = 9, 258
        w = bytes([byte])
    if w:
        put(table[w], width)
    put(257, width)
    if nbits:
        out.append((acc << (8 - nbits)) & 0xFF)
    return bytes(out)


def run_length(data: bytes) -> bytes:
    """RunLengthDecode's encoding (PDF 7.4.5)."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        j = i
        while j + 1 < n and data[j + 1] == data[i] and j - i < 127:
            j += 1
        if j > i:  # a run of j - i + 1 equal bytes
            out += bytes([257 - (j - i + 1), data[i]])
            i = j + 1
            continue
        j = i + 1
        while j < n and j - i < 128 and not (j + 1 < n and data[j] == data[j + 1]):
            j += 1
        out += bytes([j - i - 1]) + data[i:j]
        i = j
    return bytes(out + b"\x80")


def ccitt(im: Image.Image, k: int) -> bytes:
    """A bilevel image's CCITT data as libtiff (through Pillow) writes it: Group 4 for ``k < 0``,
    Group 3 one-dimensional with end-of-line codes for ``k == 0``. 0 bits are black (the PDF
    default, BlackIs1 false)."""
    buf = io.BytesIO()
    im.convert("1").save(
        buf, "TIFF", compression="group4" if k < 0 else "group3", strip_size=1 << 30
    )
    tif = Image.open(io.BytesIO(buf.getvalue()))
    offsets, counts = tif.tag_v2[273], tif.tag_v2[279]
    assert len(offsets) == 1, "one strip"
    data = buf.getvalue()[offsets[0] : offsets[0] + counts[0]]
    # Pillow writes "1" images as min-is-black: its codes' white runs are 0 bits. Invert, so the
    # runs coded as white are the white of the page, as PDF's CCITTFaxDecode reads them.
    if tif.tag_v2.get(262) == 1:
        buf = io.BytesIO()
        Image.eval(im.convert("L"), lambda v: 255 - v).convert("1").save(
            buf, "TIFF", compression="group4" if k < 0 else "group3", strip_size=1 << 30
        )
        tif = Image.open(io.BytesIO(buf.getvalue()))
        offsets, counts = tif.tag_v2[273], tif.tag_v2[279]
        data = buf.getvalue()[offsets[0] : offsets[0] + counts[0]]
    return data


def packbits_1bit(im: Image.Image) -> bytes:
    """Rows of a bilevel image, 1 bit a pixel, 1 = white (DeviceGray)."""
    return im.convert("1").tobytes()


# --- PDF writing ----------------------------------------------------------------------------


@dataclass
class ImageXObject:
    """One image stream: its bytes as they go in the file and its dictionary entries (raw PDF)."""

    data: bytes
    width: int
    height: int
    entries: dict[str, str]  # e.g. {"/Filter": "/FlateDecode", "/ColorSpace": "/DeviceGray"}
    extra: list[bytes] = field(default_factory=list)  # streams referred to as "{0} 0 R", "{1} 0 R"


@dataclass
class PageSpec:
    size: tuple[float, float]  # points
    image: ImageXObject | None = None
    placement: tuple[float, float, float, float, float, float] | None = None  # cm; None: full page
    content_extra: bytes = b""  # more content after the image (e.g. visible text)
    rotate: int = 0


def _stream(entries: dict[str, str], data: bytes) -> bytes:
    d = " ".join(f"{k} {v}" for k, v in entries.items())
    return b"<< " + d.encode() + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def write_pdf(path: Path, pages: Sequence[PageSpec], info: bytes | None = None) -> Path:
    """A PDF of ``pages``; ``info`` is the raw trailer /Info value (e.g. a broken reference)."""
    objs: list[bytes] = []

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    for p in pages:
        res = [b"/Font << /F1 %d 0 R >>" % font]
        content = b""
        if p.image is not None:
            extra_ids = [add(x) for x in p.image.extra]
            entries = {
                k: v.format(*[f"{i}" for i in extra_ids]) for k, v in p.image.entries.items()
            }
            img_id = add(
                _stream(
                    {"/Type": "/XObject", "/Subtype": "/Image", "/Width": str(p.image.width),
                     "/Height": str(p.image.height), **entries},  # fmt: skip
                    p.image.data,
                )
            )
            res.append(b"/XObject << /Im0 %d 0 R >>" % img_id)
            cm = p.placement or (p.size[0], 0, 0, p.size[1], 0, 0)
            content = b"q %s cm /Im0 Do Q\n" % " ".join(f"{v:.4f}" for v in cm).encode()
        content += p.content_extra
        c_id = add(_stream({}, content))
        rot = b" /Rotate %d" % p.rotate if p.rotate else b""
        kids.append(
            add(
                b"<< /Type /Page /Parent PAGES 0 R /MediaBox [0 0 %.2f %.2f] /Resources << %s >> "
                b"/Contents %d 0 R%s >>" % (p.size[0], p.size[1], b" ".join(res), c_id, rot)
            )
        )
    pages_obj = add(
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    )
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj)
    objs = [o.replace(b"PAGES 0 R", b"%d 0 R" % pages_obj) for o in objs]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    trailer = b"/Size %d /Root %d 0 R" % (len(objs) + 1, catalog)
    if info is not None:
        trailer += b" /Info " + info
    out += b"trailer\n<< %s >>\nstartxref\n%d\n%%%%EOF\n" % (trailer, xref)
    path.write_bytes(bytes(out))
    return path


# --- images in each encoding and colour space -----------------------------------------------


def _jpeg(im: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85, **kw)
    return buf.getvalue()


def _icc_srgb() -> bytes:
    from PIL import ImageCms

    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


ENCODINGS = (
    "jbig2", "jbig2_globals", "ccitt_g4", "ccitt_g3", "jpeg", "jpeg_cmyk", "jpeg2000",
    "flate", "flate_1bit", "lzw", "run_length", "indexed", "icc", "cmyk",
)  # fmt: skip


def image_xobject(page: Image.Image, encoding: str) -> ImageXObject:
    """``page`` (grey, as scanned) as a PDF image in ``encoding`` (one of :data:`ENCODINGS`)."""
    gray = page.convert("L")
    w, h = gray.size
    bw = gray.point(lambda v: 255 if v >= 150 else 0).convert("1")
    if encoding == "jbig2":
        return ImageXObject(
            jbig2.generic_region(bw.size, ccitt(bw, -1)), w, h,
            {"/Filter": "/JBIG2Decode", "/ColorSpace": "/DeviceGray", "/BitsPerComponent": "1"},
        )  # fmt: skip
    if encoding == "jbig2_globals":
        glob, data = jbig2.symbol_coded(bw)
        return ImageXObject(
            data, w, h,
            {"/Filter": "/JBIG2Decode", "/ColorSpace": "/DeviceGray", "/BitsPerComponent": "1",
             "/DecodeParms": "<< /JBIG2Globals {0} 0 R >>"},
            [_stream({}, glob)],
        )  # fmt: skip
    if encoding in ("ccitt_g4", "ccitt_g3"):
        k = -1 if encoding == "ccitt_g4" else 0
        parms = f"<< /K {k} /Columns {w} /Rows {h}{' /EndOfLine true' if k == 0 else ''} >>"
        return ImageXObject(
            ccitt(bw, k), w, h,
            {"/Filter": "/CCITTFaxDecode", "/ColorSpace": "/DeviceGray", "/BitsPerComponent": "1",
             "/DecodeParms": parms},
        )  # fmt: skip
    if encoding == "jpeg":
        return ImageXObject(
            _jpeg(gray), w, h,
            {"/Filter": "/DCTDecode", "/ColorSpace": "/DeviceGray", "/BitsPerComponent": "8"},
        )  # fmt: skip
    if encoding == "jpeg_cmyk":  # Adobe's inverted CMYK JPEG, as Photoshop and scanners write it
        cmyk = gray.convert("RGB").convert("CMYK")
        return ImageXObject(
            _jpeg(cmyk), w, h,
            {"/Filter": "/DCTDecode", "/ColorSpace": "/DeviceCMYK", "/BitsPerComponent": "8",
             "/Decode": "[1 0 1 0 1 0 1 0]"},
        )  # fmt: skip
    if encoding == "jpeg2000":
        buf = io.BytesIO()
        gray.convert("RGB").save(buf, "JPEG2000", quality_mode="rates", quality_layers=[20])
        return ImageXObject(buf.getvalue(), w, h, {"/Filter": "/JPXDecode"})
    if encoding == "flate":
        return ImageXObject(
            zlib.compress(gray.tobytes()), w, h,
            {"/Filter": "/FlateDecode", "/ColorSpace": "/DeviceGray", "/BitsPerComponent": "8"},
        )  # fmt: skip
    if encoding == "flate_1bit":
        return ImageXObject(
            zlib.compress(packbits_1bit(bw)), w, h,
            {"/Filter": "/FlateDecode", "/ColorSpace": "/DeviceGray", "/BitsPerComponent": "1"},
        )  # fmt: skip
    if encoding == "lzw":
        return ImageXObject(
            lzw(gray.tobytes()), w, h,
            {"/Filter": "/LZWDecode", "/ColorSpace": "/DeviceGray", "/BitsPerComponent": "8"},
        )  # fmt: skip
    if encoding == "run_length":
        return ImageXObject(
            run_length(packbits_1bit(bw)), w, h,
            {"/Filter": "/RunLengthDecode", "/ColorSpace": "/DeviceGray",
             "/BitsPerComponent": "1"},
        )  # fmt: skip
    if encoding == "indexed":
        pal = gray.quantize(16)
        lut = bytes(pal.getpalette()[: 16 * 3])  # type: ignore[index]
        return ImageXObject(
            zlib.compress(pal.tobytes()), w, h,
            {"/Filter": "/FlateDecode", "/BitsPerComponent": "8",
             "/ColorSpace": f"[/Indexed /DeviceRGB 15 <{lut.hex()}>]"},
        )  # fmt: skip
    if encoding == "icc":
        return ImageXObject(
            zlib.compress(gray.convert("RGB").tobytes()), w, h,
            {"/Filter": "/FlateDecode", "/BitsPerComponent": "8",
             "/ColorSpace": "[/ICCBased {0} 0 R]"},
            [_stream({"/N": "3", "/Filter": "/FlateDecode"}, zlib.compress(_icc_srgb()))],
        )  # fmt: skip
    if encoding == "cmyk":
        k = Image.eval(gray, lambda v: 255 - v)
        zero = Image.new("L", gray.size, 0)
        cmyk = Image.merge("CMYK", (zero, zero, zero, k))
        return ImageXObject(
            zlib.compress(cmyk.tobytes()), w, h,
            {"/Filter": "/FlateDecode", "/ColorSpace": "/DeviceCMYK", "/BitsPerComponent": "8"},
        )  # fmt: skip
    raise ValueError(f"unknown encoding {encoding!r}")


def a4_points(im: Image.Image, dpi: float) -> tuple[float, float]:
    return im.size[0] / dpi * 72, im.size[1] / dpi * 72


def scan_pdf(path: Path, pages: Sequence[Image.Image], encodings: Sequence[str], dpi: float) -> Path:
    """One full-page image a page, each page in its own encoding."""
    specs = [
        PageSpec(a4_points(im, dpi), image_xobject(im, enc))
        for im, enc in zip(pages, encodings, strict=True)
    ]
    return write_pdf(path, specs)


def visible_text(lines: Sequence[str], x: float, y: float, size: float = 10) -> bytes:
    """Content drawing ASCII text (Helvetica), one line per entry, from (x, y) down."""
    out = [b"BT /F1 %.1f Tf %.1f %.1f Td %.1f TL" % (size, x, y, size * 1.3)]
    for ln in lines:
        esc = ln.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        out.append(b"(%s) Tj T*" % esc.encode("latin-1"))
    out.append(b"ET\n")
    return b" ".join(out)
