"""What SQL a user hands us (an entity query) may do: read tables and views, and compute with
pure functions. The one allow-list of the package, checked on sqlglot's parse tree in the
engine's dialect (`check`; a plain `select * from <quoted name>`, the SQL the package writes for
a relation given by name, is checked by its name's parts without sqlglot's dialect) and, where
the engine shows its own (PostgreSQL's through pglast, DuckDB's through json_serialize_sql), on
that tree too (`check_function`, `check_relation`), so what the engine will call is what was
checked (warehouse/<engine>.py).

Power is refused by construction: a function is called only if its name, as written, is in
FUNCTIONS (the common list plus the engine's own); so settings (current_setting, set_config,
duckdb_settings), administration (pg_terminate_backend, pg_reload_conf), catalogue and table
functions (query, read_csv, dblink, lo_import ...) and anything new an engine adds are refused
because nobody listed them. Relations of the system catalogues (pg_catalog, information_schema,
duckdb_*, pg_* ...) are refused by name. SQL that sqlglot cannot parse is refused too.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from ..sql import quote_identifier
from . import UserQueryError

# sqlglot's dialect for each engine's template dialect
SQLGLOT_DIALECTS = {"duckdb": "duckdb", "postgres": "postgres", "spark": "spark"}

_AGGREGATES = """
count sum avg mean min max any_value arbitrary first last stddev stddev_pop stddev_samp variance var_pop var_samp
bool_and bool_or every string_agg group_concat listagg array_agg list median mode quantile quantile_cont quantile_disc
percentile_cont percentile_disc approx_count_distinct approx_quantile approx_percentile count_if countif corr
covar_pop covar_samp regr_slope regr_intercept regr_r2 regr_count regr_avgx regr_avgy regr_sxx regr_syy regr_sxy
arg_min arg_max argmin argmax min_by max_by bit_and bit_or bit_xor product skewness kurtosis entropy histogram
""".split()
_WINDOWS = "row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value".split()
_SCALARS = """
abs ceil ceiling floor round trunc truncate sign sqrt cbrt exp ln log log10 log2 power pow mod greatest least
pi degrees radians sin cos tan asin acos atan atan2 isnan isinf isfinite random rand
coalesce nullif ifnull nvl nvl2 if iff
lower upper lcase ucase length char_length character_length octet_length len substr substring trim ltrim rtrim btrim
replace concat concat_ws left right lpad rpad split_part strpos position instr starts_with ends_with contains
reverse repeat initcap ascii chr regexp_matches regexp_replace regexp_extract regexp_like regexp_substr
md5 sha1 sha256 hash format printf translate
now current_date current_timestamp localtimestamp today
date_trunc datetrunc date_part datepart extract date_add date_sub dateadd datediff date_diff age
make_date make_timestamp make_time make_interval to_timestamp to_date to_char strftime strptime
epoch epoch_ms to_seconds to_minutes to_hours to_days to_weeks to_months to_years timezone
year month day dayofweek dayofyear hour minute second week quarter last_day
generate_series range unnest array_length cardinality
""".split()

FUNCTIONS: dict[str, frozenset[str]] = {
    "common": frozenset(_AGGREGATES + _WINDOWS + _SCALARS),
    "duckdb": frozenset("""
        list_value list_extract list_contains list_transform list_filter list_sort array_extract array_contains
        struct_pack struct_extract time_bucket epoch_us epoch_ns date_diff datesub dayname monthname isodow
        yearweek try_strptime
        count_star regexp_full_match overlay row map list_apply quantile_cont
    """.split()),
    "postgres": frozenset("""
        to_number justify_days justify_hours justify_interval date_bin array_position array_to_string
        string_to_array array_upper array_lower isfinite
    """.split()),
    "spark": frozenset("""
        date_format from_unixtime unix_timestamp unix_seconds unix_micros unix_millis to_unix_timestamp
        timestamp_seconds timestamp_millis timestamp_micros make_dt_interval make_ym_interval sequence explode
        posexplode explode_outer array struct named_struct map element_at size array_contains collect_list
        collect_set weekofyear dayofmonth months_between add_months next_day from_utc_timestamp to_utc_timestamp
        try_cast
    """.split()),
}

# Reading the host's files: only when the user opts in (allow_file_access); the engines refuse
# file access too (DuckDB's enable_external_access, Spark's runSQLOnFiles, PostgreSQL's grants).
FILE_FUNCTIONS: dict[str, frozenset[str]] = {
    "duckdb": frozenset("read_csv read_csv_auto read_parquet parquet_scan read_json read_json_auto read_ndjson"
                        .split()),
    "postgres": frozenset("pg_read_file pg_read_binary_file pg_stat_file pg_ls_dir".split()),
    "spark": frozenset(),
}

# Functions spelled as syntax (CAST(x AS t), x::t, CASE, EXTRACT(f FROM x), [1, 2], keywords
# without parentheses) and the pure nodes sqlglot makes from an allowed call: sqlglot does not
# record a written name for them, so their kind is what is allowed.
_SYNTAX = (exp.Cast, exp.TryCast, exp.Extract, exp.Case, exp.If, exp.Exists, exp.Array, exp.Struct,
           exp.Substring, exp.StrPosition, exp.Trim, exp.Overlay, exp.CurrentDate, exp.CurrentTimestamp,
           exp.CurrentTime, exp.Localtimestamp, exp.Localtime, exp.Transform, exp.JSONExtract, exp.JSONExtractScalar,
           exp.TsOrDsToDate, exp.TimeStrToTime, exp.StrToTime, exp.TimeToStr, exp.Bracket, exp.Interval)

# SQL-standard functions called without parentheses that sqlglot reads as a column: who and
# where the session is (a column of that name must be quoted to be one)
KEYWORD_FUNCTIONS = frozenset({"user", "current_role", "system_user", "session_user", "current_user",
                                "current_schema", "current_catalog"})

# Relations of the system catalogues: settings, sessions, users, the schema itself.
SYSTEM_SCHEMAS: dict[str, frozenset[str]] = {
    "duckdb": frozenset({"information_schema", "pg_catalog", "system", "temp"}),
    "postgres": frozenset({"information_schema", "pg_catalog", "pg_toast"}),
    "spark": frozenset({"information_schema", "system"}),
}
SYSTEM_PREFIXES: dict[str, tuple[str, ...]] = {
    "duckdb": ("duckdb_", "pragma_", "sqlite_", "pg_"),
    "postgres": ("pg_",),  # pg_catalog comes first on every search path: pg_stat_activity is its relation
    "spark": (),
}

# Statements and clauses that do something other than read (the engines' parsers refuse them
# as well; sqlglot's fallback for syntax it does not know is a Command)
_NOT_READING = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command,
                exp.Into, exp.Lock, exp.Set, exp.Pragma, exp.Copy, exp.Use, exp.Describe,
                exp.QueryTransform)  # Spark's TRANSFORM ... USING 'command' runs a program


def allowed_functions(dialect: str) -> frozenset[str]:
    return FUNCTIONS["common"] | FUNCTIONS[dialect]


def _written_name(node: exp.Func, sql: str) -> str | None:
    """The function's name as the user wrote it (what the engine will call), if sqlglot recorded it."""
    start, end = node.meta.get("start"), node.meta.get("end")
    if start is None or end is None:
        return None
    name = sql[start:end + 1]
    return name[1:-1] if len(name) > 1 and name[0] == name[-1] and name[0] in "\"`" else name


def _relation_read(sql: str, dialect: str) -> list[str] | None:
    """The parts of the relation `sql` reads if it is exactly `select * from <quoted name>` (what
    an entity relation given by name becomes: sql/relation_probe.sql.j2), else None."""
    mark = quote_identifier("", dialect)[0]
    part = f"{mark}((?:[^{mark}]|{mark}{mark})+){mark}"
    match = re.fullmatch(rf"\s*select \* from {part}(?:\.{part})?(?:\.{part})?\s*", sql)
    if match is None:
        return None
    return [name.replace(mark * 2, mark) for name in match.groups() if name is not None]


def check(sql: str, dialect: str, allow_file_access: bool = False) -> None:
    """Raise UserQueryError, naming the function or relation at fault, unless `sql` is one query
    that reads relations that are not the system's and calls only allowed functions. A relation
    given by name (select * from it, quoted) needs no parser: its parts are checked as sqlglot's
    tree would give them (and importing sqlglot's dialect costs a small export a fifth of its time)."""
    parts = _relation_read(sql, dialect)
    if parts is not None:
        check_relation(parts, dialect)
        return
    try:
        statements = sqlglot.parse(sql, read=SQLGLOT_DIALECTS[dialect])
    except sqlglot.errors.SqlglotError as exc:
        raise UserQueryError(f"The entity query cannot be checked: it does not parse as {dialect} SQL "
                             f"({str(exc).strip().splitlines()[0]}); write it as one plain SELECT.") from None
    statements = [statement for statement in statements if statement is not None]
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        kinds = ", ".join(type(statement).__name__.upper() for statement in statements) or "none"
        raise UserQueryError(f"The entity query must be exactly one SELECT statement; found {kinds}.")
    for node in statements[0].walk():
        if isinstance(node, _NOT_READING):
            raise UserQueryError(f"The entity query must only read; it contains {node.key.upper()} "
                                 f"({node.sql(SQLGLOT_DIALECTS[dialect])[:60]}).")
        if isinstance(node, exp.Func):
            name = _written_name(node, sql)
            if name is None and isinstance(node, _SYNTAX):
                continue
            name = name or (node.name if isinstance(node, exp.Anonymous) else node.sql_name().lower())
            qualifier = node.parent.this.sql() if isinstance(node.parent, exp.Dot) and node.arg_key == "expression" \
                else None
            check_function(name, dialect, allow_file_access, qualifier)
        elif isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            check_relation([part for part in (node.catalog, node.db, node.name) if part], dialect)
        elif isinstance(node, exp.Column) and not node.table and isinstance(node.this, exp.Identifier) \
                and not node.this.quoted and node.name.lower() in KEYWORD_FUNCTIONS:
            check_function(node.name, dialect, allow_file_access)


def check_function(name: str, dialect: str, allow_file_access: bool = False, qualifier: str | None = None) -> None:
    """Raise UserQueryError unless an entity query may call the function `name` (as written)."""
    if qualifier is not None:
        raise UserQueryError(f"The entity query calls {qualifier}.{name}(); entity queries may call functions only "
                             "by their plain name.")
    allowed = allowed_functions(dialect) | (FILE_FUNCTIONS[dialect] if allow_file_access else frozenset())
    if name.lower() in allowed:
        return
    why = ("which reads the host's files: pass allow_file_access=True / --allow-file-access to allow it"
           if name.lower() in FILE_FUNCTIONS[dialect] else
           "which is not one of the pure functions entity queries may call (featurestore.warehouse.allowlist)")
    raise UserQueryError(f"The entity query calls the function {name}(), {why}.")


def check_relation(parts: list[str], dialect: str) -> None:
    """Raise UserQueryError if the relation (catalog, schema, name as written) is the system's."""
    system = next((part for part in parts[:-1] if part.lower() in SYSTEM_SCHEMAS[dialect]), None)
    if system is not None or parts[-1].lower().startswith(SYSTEM_PREFIXES[dialect]):
        raise UserQueryError(f"The entity query reads {'.'.join(parts)}, a relation of the system catalogue "
                             f"({system or parts[-1]}); entity queries may read your tables and views only.")
