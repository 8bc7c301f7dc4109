"""Reading an APK's binary ``AndroidManifest.xml`` (Android's AXML format).

Installing a firmware app as a privileged system app needs its package name
and the permissions it requests (for the privapp-permissions allowlist;
without an allowlist entry for a requested privileged permission, a device
enforcing ``ro.control_privapp_permissions`` refuses to boot).  The APK is
hostile input, so this is a small, bounds-checked reader of exactly what is
needed, following AOSP ``libs/androidfw/include/androidfw/ResourceTypes.h``:

* chunks start with ``ResChunk_header`` (u16 type, u16 headerSize, u32 size);
* ``RES_STRING_POOL_TYPE`` (0x0001): counts, flags (UTF8 = 0x100), offsets,
  then UTF-16 or UTF-8 strings with length prefixes;
* ``RES_XML_RESOURCE_MAP_TYPE`` (0x0180): resource ids of attribute names, so
  ``android:name`` is recognised as 0x01010003 even when its string is
  stripped;
* ``RES_XML_START_ELEMENT_TYPE`` (0x0102): ``ResXMLTree_attrExt`` then
  attributes of ``attributeSize`` bytes (ns, name, rawValue, Res_value).
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import BundleError

RES_XML_TYPE = 0x0003
RES_STRING_POOL_TYPE = 0x0001
RES_XML_RESOURCE_MAP_TYPE = 0x0180
RES_XML_START_ELEMENT_TYPE = 0x0102
UTF8_FLAG = 0x100
NO_INDEX = 0xFFFFFFFF
TYPE_REFERENCE, TYPE_STRING, TYPE_INT_DEC, TYPE_INT_HEX, TYPE_INT_BOOLEAN = 0x01, 0x03, 0x10, 0x11, 0x12
ANDROID_NS = "http://schemas.android.com/apk/res/android"
ATTR_IDS = {
    0x01010003: "name",
    0x0101021B: "versionCode",
    0x0101021C: "versionName",
    0x0101000B: "sharedUserId",
    0x0101000D: "persistent",
}
PERMISSION_TAGS = frozenset({"uses-permission", "uses-permission-sdk-23", "uses-permission-sdk-m"})
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_STRINGS = 200_000


@dataclass(frozen=True)
class Element:
    tag: str
    attrs: dict[str, str]  # "name" for android:name, "package" for unprefixed


@dataclass(frozen=True)
class ApkManifest:
    package: str
    version_code: str | None
    version_name: str | None
    shared_user_id: str | None
    persistent: bool
    permissions: tuple[str, ...]


class AxmlError(BundleError):
    """The APK or its manifest is malformed."""


def _u16(data: bytes, off: int) -> int:
    if off < 0 or off + 2 > len(data):
        raise AxmlError("truncated AXML (u16)")
    return int(struct.unpack_from("<H", data, off)[0])


def _u32(data: bytes, off: int) -> int:
    if off < 0 or off + 4 > len(data):
        raise AxmlError("truncated AXML (u32)")
    return int(struct.unpack_from("<I", data, off)[0])


def _string_pool(data: bytes, start: int, end: int) -> list[str]:
    count, styles, flags, strings_start = _u32(data, start + 8), _u32(data, start + 12), _u32(data, start + 16), _u32(
        data, start + 20)
    del styles
    if count > MAX_STRINGS:
        raise AxmlError(f"string pool too large ({count})")
    header = _u16(data, start + 2)
    utf8 = bool(flags & UTF8_FLAG)
    base = start + strings_start
    out: list[str] = []
    for i in range(count):
        off = base + _u32(data, start + header + 4 * i)
        if not start <= off < end:
            raise AxmlError("string offset out of range")
        out.append(_read_utf8(data, off, end) if utf8 else _read_utf16(data, off, end))
    return out


def _len8(data: bytes, off: int) -> tuple[int, int]:
    if off >= len(data):
        raise AxmlError("truncated string length")
    first = data[off]
    if first & 0x80:
        if off + 1 >= len(data):
            raise AxmlError("truncated string length")
        return ((first & 0x7F) << 8) | data[off + 1], off + 2
    return first, off + 1


def _read_utf8(data: bytes, off: int, end: int) -> str:
    _chars, off = _len8(data, off)
    nbytes, off = _len8(data, off)
    if off + nbytes > end:
        raise AxmlError("string runs past its pool")
    return data[off : off + nbytes].decode("utf-8", "replace")


def _read_utf16(data: bytes, off: int, end: int) -> str:
    n = _u16(data, off)
    off += 2
    if n & 0x8000:
        n = ((n & 0x7FFF) << 16) | _u16(data, off)
        off += 2
    if off + 2 * n > end:
        raise AxmlError("string runs past its pool")
    return data[off : off + 2 * n].decode("utf-16-le", "replace")


def _value(strings: list[str], raw: int, dtype: int, value: int) -> str:
    def s(i: int) -> str:
        if i >= len(strings):
            raise AxmlError("string index out of range")
        return strings[i]

    if raw != NO_INDEX:
        return s(raw)
    if dtype == TYPE_STRING:
        return s(value)
    if dtype == TYPE_INT_BOOLEAN:
        return "true" if value else "false"
    if dtype == TYPE_INT_HEX:
        return f"0x{value:08x}"
    if dtype == TYPE_REFERENCE:
        return f"@0x{value:08x}"
    if dtype == TYPE_INT_DEC:
        return str(value - (1 << 32) if value & 0x80000000 else value)
    return str(value)


def parse_axml(data: bytes) -> list[Element]:
    """The start elements of a binary XML document, in order."""
    if len(data) < 8 or _u16(data, 0) != RES_XML_TYPE:
        raise AxmlError("not a binary XML document (bad magic)")
    total = min(_u32(data, 4), len(data))
    strings: list[str] = []
    res_ids: list[int] = []
    elements: list[Element] = []
    off = _u16(data, 2)
    while off + 8 <= total:
        ctype, hsize, csize = _u16(data, off), _u16(data, off + 2), _u32(data, off + 4)
        if csize < 8 or hsize > csize or off + csize > total:
            raise AxmlError(f"bad chunk at {off}")
        end = off + csize
        if ctype == RES_STRING_POOL_TYPE:
            strings = _string_pool(data, off, end)
        elif ctype == RES_XML_RESOURCE_MAP_TYPE:
            res_ids = [_u32(data, p) for p in range(off + hsize, end - 3, 4)]
        elif ctype == RES_XML_START_ELEMENT_TYPE:
            ext = off + hsize
            name_idx = _u32(data, ext + 4)
            attr_start, attr_size, attr_count = _u16(data, ext + 8), _u16(data, ext + 10), _u16(data, ext + 12)
            if name_idx >= len(strings) or attr_size < 20:
                raise AxmlError("malformed element")
            attrs: dict[str, str] = {}
            for i in range(attr_count):
                a = ext + attr_start + i * attr_size
                if a + 20 > end:
                    raise AxmlError("attribute runs past its element")
                a_name, raw = _u32(data, a + 4), _u32(data, a + 8)
                dtype, value = data[a + 15], _u32(data, a + 16)
                key = ATTR_IDS.get(res_ids[a_name]) if a_name < len(res_ids) else None
                if key is None:
                    if a_name >= len(strings):
                        raise AxmlError("attribute name out of range")
                    key = strings[a_name]
                attrs[key] = _value(strings, raw, dtype, value)
            elements.append(Element(strings[name_idx], attrs))
        off = end
    return elements


def manifest_from_axml(data: bytes) -> ApkManifest:
    elements = parse_axml(data)
    if not elements or elements[0].tag != "manifest" or not elements[0].attrs.get("package"):
        raise AxmlError("the manifest has no <manifest package=...>")
    root = elements[0].attrs
    app = next((e.attrs for e in elements if e.tag == "application"), {})
    perms = tuple(dict.fromkeys(e.attrs["name"] for e in elements if e.tag in PERMISSION_TAGS and "name" in e.attrs))
    return ApkManifest(
        package=root["package"], version_code=root.get("versionCode"), version_name=root.get("versionName"),
        shared_user_id=root.get("sharedUserId"), persistent=app.get("persistent") == "true", permissions=perms,
    )


def read_apk_manifest(apk: Path) -> ApkManifest:
    """Package name and requested permissions of ``apk``; AxmlError when malformed."""
    try:
        with zipfile.ZipFile(apk) as zf:
            try:
                info = zf.getinfo("AndroidManifest.xml")
            except KeyError as exc:
                raise AxmlError(f"{apk.name} has no AndroidManifest.xml") from exc
            if info.file_size > MAX_MANIFEST_BYTES:
                raise AxmlError(f"{apk.name}: AndroidManifest.xml is too large ({info.file_size} bytes)")
            data = zf.read(info)[: MAX_MANIFEST_BYTES + 1]
    except (zipfile.BadZipFile, OSError) as exc:
        raise AxmlError(f"{apk.name} is not a readable APK: {exc}") from exc
    if len(data) > MAX_MANIFEST_BYTES:
        raise AxmlError(f"{apk.name}: AndroidManifest.xml is too large")
    return manifest_from_axml(data)


__all__ = ["ApkManifest", "AxmlError", "Element", "manifest_from_axml", "parse_axml", "read_apk_manifest"]
