"""The one table of types: what a YAML `data_type` names, as the Arrow type every engine's reader
gives for it, and the coarse family a type belongs to.

A declared type **matches** a built column when both are the same Arrow type, with two
allowances: every string type is one (`varchar(16)`, `text`, Spark's `string`), and timestamps
compare by having a zone or not (the unit is the engine's). Anything else is a mismatch the
model's SQL must cast away: `bigint` is not DuckDB's HUGEINT (`sum()` of integers), `double` is
not FLOAT (single precision), `decimal(18,2)` is not `decimal(38,2)` (DuckDB's `sum()` of
decimals). A declared type this table does not know (`struct<...>`, `json`, an unconstrained
PostgreSQL `numeric`) is not checked.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

import pyarrow as pa

INTEGER, FLOAT, DECIMAL, STRING, BOOLEAN, TIMESTAMP, DATE, NULL = (
    "integer", "float", "decimal", "string", "boolean", "timestamp", "date", "null")

# declared name (lower case, without arguments) -> Arrow type. `float` is per engine, below.
_NAMED = {
    "tinyint": pa.int8(), "byte": pa.int8(), "int1": pa.int8(),
    "smallint": pa.int16(), "short": pa.int16(), "int2": pa.int16(),
    "integer": pa.int32(), "int": pa.int32(), "int4": pa.int32(), "signed": pa.int32(),
    "bigint": pa.int64(), "long": pa.int64(), "int8": pa.int64(),
    "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
    "hugeint": pa.decimal128(38, 0),
    "utinyint": pa.uint8(), "usmallint": pa.uint16(), "uinteger": pa.uint32(), "ubigint": pa.uint64(),
    "real": pa.float32(), "float4": pa.float32(),
    "double": pa.float64(), "double precision": pa.float64(), "float8": pa.float64(),
    "boolean": pa.bool_(), "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"), "datetime": pa.timestamp("us"), "timestamp without time zone": pa.timestamp("us"),
    "timestamp_ntz": pa.timestamp("us"),
    # DuckDB's timestamps of other units (a timestamp matches whatever its unit: `matches`)
    "timestamp_ns": pa.timestamp("ns"), "timestamp_ms": pa.timestamp("ms"), "timestamp_s": pa.timestamp("s"),
    "timestamp_us": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"), "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "timestamp_ltz": pa.timestamp("us", tz="UTC"),
    "varchar": pa.string(), "text": pa.string(), "string": pa.string(), "char": pa.string(),
    "character": pa.string(), "character varying": pa.string(), "bpchar": pa.string(), "nvarchar": pa.string(),
}
# a bare `decimal`/`numeric` per engine (PostgreSQL's is unconstrained: no Arrow type)
_DEFAULT_DECIMAL = {"duckdb": (18, 3), "spark": (10, 0)}
# name, (first, second) arguments, and PostgreSQL's zone after them: `timestamp(3) with time zone`
_DECLARED = re.compile(r"^\s*([a-z_][a-z0-9_ ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*(with(?:out)? time zone)?\s*$",
                       re.IGNORECASE)


@lru_cache(maxsize=4096)  # called per value by the online decoder
def declared_arrow_type(declared: str | None, dialect: str | None = None) -> pa.DataType | None:
    """The exact Arrow type of a YAML data_type on an engine (None: unknown, not checked)."""
    match = _DECLARED.match(declared or "")
    if not match:
        return None
    name, first, second = match.group(1).lower(), match.group(2), match.group(3)
    if match.group(4):
        name = f"{name} {match.group(4).lower()}"
    if name in ("decimal", "numeric", "dec"):
        if first is not None:
            return pa.decimal128(int(first), int(second or 0)) if 0 < int(first) <= 38 else None
        default = _DEFAULT_DECIMAL.get(dialect or "")
        return pa.decimal128(*default) if default else None
    if name == "float":
        # PostgreSQL's float is double precision; DuckDB's and Spark's are single. float(p): p bits of mantissa.
        if first is not None:
            return pa.float32() if int(first) <= 24 else pa.float64()
        return pa.float64() if dialect == "postgres" else pa.float32()
    if name in ("varchar", "char", "character", "character varying", "nvarchar", "string", "text", "bpchar"):
        return pa.string()  # a length changes nothing we read
    if first is not None:
        # timestamp(p): a fractional-seconds precision; every engine's reader gives microseconds
        return _NAMED[name] if name in _NAMED and pa.types.is_timestamp(_NAMED[name]) else None
    return _NAMED.get(name)


def family(kind: pa.DataType) -> str:
    """The coarse family of an Arrow type: members compare correctly with each other in SQL."""
    if pa.types.is_integer(kind):
        return INTEGER
    if pa.types.is_floating(kind):
        return FLOAT
    if pa.types.is_decimal(kind):
        return DECIMAL
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return STRING
    if pa.types.is_boolean(kind):
        return BOOLEAN
    if pa.types.is_timestamp(kind):
        return TIMESTAMP
    if pa.types.is_date(kind):
        return DATE
    if pa.types.is_null(kind):
        return NULL
    return str(kind)


@lru_cache(maxsize=4096)
def declared_family(declared: str | None) -> str | None:
    """The family of a YAML data_type, whatever the engine (None: unknown)."""
    match = _DECLARED.match(declared or "")
    if match and match.group(1).lower() in ("decimal", "numeric", "dec"):
        return DECIMAL  # also the bare, engine-dependent `decimal`
    kind = declared_arrow_type(declared, "duckdb")
    return family(kind) if kind is not None else None


def matches(declared: pa.DataType, built: pa.DataType) -> bool:
    """Whether a built column has the declared type (the rule in the module docstring)."""
    if family(declared) == STRING:
        return family(built) == STRING
    if pa.types.is_timestamp(declared):
        return pa.types.is_timestamp(built) and (declared.tz is None) == (built.tz is None)
    return declared == built


def type_mismatch(declared: str | None, built: pa.DataType, dialect: str | None = None) -> str | None:
    """Why a built column does not have its declared data_type, or None when it does (or the
    declared type is not one this table knows)."""
    wanted = declared_arrow_type(declared, dialect)
    if wanted is None or matches(wanted, built):
        return None
    return (f"declared `data_type: {declared}` but the built column is {describe(built)}; cast it in the "
            f"model's SQL (cast(... as {declared})) or declare the type it has, then run `dbt build`")


def describe(kind: pa.DataType) -> str:
    """An Arrow type in SQL's words (DuckDB's HUGEINT reads as decimal(38,0))."""
    if pa.types.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})" + (" (e.g. DuckDB's HUGEINT, from sum() of integers)"
                                                             if (kind.precision, kind.scale) == (38, 0) else "")
    names = {pa.int8(): "tinyint", pa.int16(): "smallint", pa.int32(): "integer", pa.int64(): "bigint",
             pa.float32(): "float (single precision)", pa.float64(): "double", pa.bool_(): "boolean",
             pa.date32(): "date", pa.string(): "varchar", pa.large_string(): "varchar"}
    if kind in names:
        return names[kind]
    if pa.types.is_timestamp(kind):
        return "timestamp with time zone" if kind.tz else "timestamp"
    return str(kind)


# Types of the engines that this table knowingly leaves unchecked (nested, binary, JSON, ...).
_UNCHECKED = frozenset({
    "struct", "array", "map", "list", "union", "json", "jsonb", "blob", "bytea", "binary", "varbinary", "bytes",
    "uuid", "interval", "time", "timetz", "bit", "bitstring", "varint", "bignum", "uhugeint", "enum", "variant",
    "object", "geometry", "geography", "inet", "cidr", "macaddr", "macaddr8", "xml", "money", "tsvector", "tsquery",
    "oid", "null", "void", "serial", "bigserial", "smallserial", "serial4", "serial8", "citext", "int4range",
    "int8range", "numrange", "tsrange", "tstzrange", "daterange", "point", "line", "lseg", "box", "path", "polygon",
    "circle",
})


@lru_cache(maxsize=4096)
def unknown_type(declared: str | None) -> str | None:
    """Why a YAML data_type names no type of any engine we read (a typo: `bigitn`, `intger[]`,
    `double precison`), with the closest name known; None for a known type, a type this table
    leaves unchecked (`struct<...>`, `json`, `varchar(max)`) or no type at all."""
    if not declared or declared_family(declared) is not None:
        return None
    text = declared.strip().lower()
    element = text
    while element.endswith("[]"):  # an array: its element type
        element = element[:-2].rstrip()
    if element != text:
        return unknown_type(element) and _not_known(declared, element)
    match = _DECLARED.match(text)
    base = re.split(r"[\s(<\[]", text, maxsplit=1)[0]
    if base in _UNCHECKED:
        return None
    if base in _KNOWN_NAMES:  # a known name with words or arguments we do not read (`varchar(max)`,
        # `varchar collate nocase`, `integer array`), unless it is a misspelt two-word name (`double precison`)
        name = match.group(1).lower() if match else text
        return _not_known(declared, name) if _closest(name) else None
    return _not_known(declared, match.group(1).lower() if match else base)


_KNOWN_NAMES = frozenset({*_NAMED, "decimal", "numeric", "dec", "float"})


def _closest(name: str) -> str | None:
    close = difflib.get_close_matches(name, sorted(_KNOWN_NAMES), n=1, cutoff=0.8)
    return close[0] if close else None


def _not_known(declared: str, name: str) -> str:
    close = _closest(name)
    return (f"data_type '{declared}' is not a type featurestore knows" + (f" (did you mean '{close}'?)" if close else "")
            + ": its built column and its online values cannot be checked against it")


# -- the families other modules ask about ----------------------------------------------------------


@lru_cache(maxsize=4096)
def is_numeric(declared: str | None) -> bool:
    """Numbers (integers, floats, decimals): statistics give them quantiles and drift a PSI."""
    return declared_family(declared) in (INTEGER, FLOAT, DECIMAL)


@lru_cache(maxsize=4096)
def is_whole_number(declared: str | None) -> bool:
    """Integer-valued: the integer types, and DuckDB's HUGEINT (read as decimal(38,0)). An online
    value of such a column is a Python int, and a join key of one an integer. (A declared
    `decimal(p,0)` stays a decimal, as declared.)"""
    match = _DECLARED.match(declared or "")
    return declared_family(declared) == INTEGER or bool(match and match.group(1).lower() == "hugeint")


@lru_cache(maxsize=4096)
def key_range(declared: str | None) -> tuple[int, int] | None:
    """The smallest and largest integer a join key of this declared type can hold online: bigint's
    range, or the declared type's where it is wider (ubigint, HUGEINT). A narrower declaration
    (integer) still gets bigint's: `validate` only warns when the built column is wider than
    declared. None for keys that are not integer-valued."""
    if key_family(declared) != INTEGER:
        return None
    match = _DECLARED.match(declared or "")
    if match and match.group(1).lower() == "hugeint":
        return -(2 ** 127), 2 ** 127 - 1
    if declared_arrow_type(declared, "duckdb") == pa.uint64():
        return 0, 2 ** 64 - 1
    return -(2 ** 63), 2 ** 63 - 1


@lru_cache(maxsize=4096)
def key_family(declared: str | None) -> str | None:
    """The family a join key's values must have online: INTEGER, STRING (a UUID is sent as its
    text), or None (undeclared or another type: strings and integers are both accepted)."""
    if is_whole_number(declared):
        return INTEGER
    if declared_family(declared) == STRING:
        return STRING
    match = _DECLARED.match(declared or "")
    return STRING if match and match.group(1).lower() == "uuid" else None
