"""The table of hostile values the no-500 harness sends, already percent-encoded as they travel
in a path or a query string or a form body (so that bytes no Python string can hold, such as a
lone surrogate's UTF-8 or invalid UTF-8, reach the server as a browser or a script would send
them). ``SHORT`` is what ``make test`` sends; ``FULL`` (``make test-full``) adds the rest."""

from __future__ import annotations

# One of each kind of trouble: what breaks a database (NUL), a decoder (lone surrogates,
# invalid UTF-8), a terminal or a log line (control characters, CR LF), a layout (RTL marks,
# very long strings), and every way a number can be wrong (zero, negative, fractional, float
# specials, beyond 32 and 64 bits, beyond Python's int() limit, digits that str.isdigit()
# accepts and int() refuses, digits of other scripts).
SHORT: dict[str, str] = {
    "empty": "",
    "nul": "a%00b",
    "surrogate": "%ED%A0%80",
    "bad-utf8": "%FF%FE",
    "crlf": "x%0D%0ASet-Cookie:%20pwned=1",
    "rtl": "%E2%80%AEabc",
    "zero": "0",
    "negative": "-1",
    "float": "1.5",
    "huge": "99999999999999999999",
    "int64+1": "9223372036854775808",
    "superscript-two": "%C2%B2",  # "²".isdigit() is True, int("²") raises
    "arabic-digits": "%D9%A1%D9%A2",  # "١٢": int() reads 12
    "fullwidth-digits": "%EF%BC%91%EF%BC%92",  # fullwidth "12": int() reads 12
    "markup": "%3Csvg%20onload%3Dalert(1)%3E",
}
MORE: dict[str, str] = {
    "nul-only": "%00",
    "lone-low-surrogate": "%ED%B0%80",
    "overlong-utf8": "%C0%AF",
    "control": "%01%1B%5B31m%7F",
    "bom": "%EF%BB%BFx",
    "zero-width": "%E2%80%8B",
    "emoji": "%F0%9F%98%80",
    "combining": "e%CC%81%CC%81%CC%81%CC%81",
    "space-padded": "%201%20",
    "plus": "%2B1",
    "minus-zero": "-0",
    "exponent": "1e400",
    "nan": "nan",
    "inf": "inf",
    "hex": "0x10",
    "underscore": "1_000",
    "int32+1": "2147483648",
    "circled-one": "%E2%91%A0",
    "too-many-digits": "9" * 5000,  # int() refuses more than 4,300 digits
    "json": "%7B%22a%22%3A%5B1%5D%7D",
    "quote": "%27%22%3B--",
    "path": "..%2F..%2Fetc%2Fpasswd",
    "percent": "%25",
    "long": "x" * 20_000,
}
FULL: dict[str, str] = {**SHORT, **MORE, "very-long": "y" * 200_000}

# Path segments. An <int:...> segment only matches digits; every other kind of segment gets the
# same table as a query value (less what cannot be a segment: empty, a slash).
INT_SEGMENTS: dict[str, str] = {
    "zero": "0",
    "int64+1": "9223372036854775808",
    "huge": "99999999999999999999",
}
INT_SEGMENTS_MORE: dict[str, str] = {
    "int32+1": "2147483648",
    "too-many-digits": "9" * 5000,
}

MARKER = "<svg onload=alert(1)>"  # must never come back unescaped in a page


def table(full: bool) -> dict[str, str]:
    return FULL if full else SHORT


def segments(full: bool, *, numeric: bool) -> dict[str, str]:
    if numeric:
        return {**INT_SEGMENTS, **INT_SEGMENTS_MORE} if full else INT_SEGMENTS
    if not full:
        return {k: SHORT[k] for k in SHORT_SEGMENTS}
    values = {k: v for k, v in FULL.items() if v and "%2F" not in v}
    values.pop("very-long", None)  # longer than any server's request line
    return values


SHORT_SEGMENTS = (
    "nul",
    "surrogate",
    "bad-utf8",
    "crlf",
    "rtl",
    "huge",
    "superscript-two",
    "markup",
)


# Fields one at a time, the others left as the page filled them: a smaller table (it is sent
# once per field of every form) of what most often gets past a page's own checks.
FIELD_SHORT: dict[str, str] = {k: SHORT[k] for k in ("nul", "negative", "huge", "superscript-two")}

# Uploaded files: nothing, NUL bytes, invalid UTF-8, a UTF-8 BOM before valid code, a BOM alone,
# a line too long for any reader, and a file too big.
FILES: dict[str, bytes] = {
    "empty": b"",
    "nul": b"def f(x):\n    return x\x00\n",
    "bad-utf8": b"\xff\xfe\xfa x = 1\n",
    "bom-code": b"\xef\xbb\xbfdef f(x):\n    return x + 1\n",
    "bom-only": b"\xef\xbb\xbf",
    "csv-like": b"email,role\n\x00@x,student\n\xef\xbb\xbfa@b.c,teacher\n,,,\n",
    "long-line": b"x = '" + b"a" * 300_000 + b"'\n",
}
