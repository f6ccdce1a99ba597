"""The entity frame before any warehouse sees it: which column is the point in time, what kind
of input it is, timestamps made naive UTC, row numbers, and join-key types."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.entity_frame import (
    ROW_COLUMN, EntityFrameError, check_column_names, check_key_types, choose_timestamp_column, entity_source,
    normalise_timestamp, output_timestamp_type, with_row_numbers,
)

TS, TZ, DAY, TEXT, INT = pa.timestamp("us"), pa.timestamp("us", tz="UTC"), pa.date32(), pa.string(), pa.int64()


def schema(**columns: pa.DataType) -> pa.Schema:
    return pa.schema(list(columns.items()))


# -- the timestamp column ------------------------------------------------------------------------


@pytest.mark.parametrize("columns, requested, chosen", [
    ({"customer_id": INT, "label_ts": TS}, "label_ts", "label_ts"),  # asked for
    ({"event_timestamp": TS, "label_ts": TS}, "label_ts", "label_ts"),  # asked for, over the default
    ({"label_ts": TEXT}, "label_ts", "label_ts"),  # asked for: any type here (normalise_timestamp judges it)
    ({"customer_id": INT, "event_timestamp": TS}, None, "event_timestamp"),  # the default name
    ({"event_timestamp": TEXT, "label_ts": TS}, None, "event_timestamp"),  # the name wins over the type
    ({"event_timestamp": TS, "a": TS, "b": DAY}, None, "event_timestamp"),  # ... and over several candidates
    ({"customer_id": INT, "label_ts": TS}, None, "label_ts"),  # the one timestamp column
    ({"customer_id": INT, "label_ts": TZ}, None, "label_ts"),  # with a zone
    ({"customer_id": INT, "as_of": DAY}, None, "as_of"),  # a date
    ({"customer_id": INT, "as_of": pa.date64()}, None, "as_of"),
    ({"customer_id": INT, "at": pa.timestamp("ns")}, None, "at"),
    ({"customer_id": INT, "Event_Timestamp": TS}, None, "Event_Timestamp"),  # not the default name: by its type
])
def test_the_timestamp_column_chosen(columns, requested, chosen):
    assert choose_timestamp_column(schema(**columns), requested, "DataFrame") == chosen


def test_an_empty_request_is_no_request():
    assert choose_timestamp_column(schema(customer_id=INT, label_ts=TS), "", "DataFrame") == "label_ts"


def test_a_requested_column_that_is_not_there_lists_the_columns():
    with pytest.raises(EntityFrameError) as raised:
        choose_timestamp_column(schema(customer_id=INT, label_ts=TS), "label_at", "file labels.csv")
    assert str(raised.value) == ("The entity file labels.csv has no timestamp column 'label_at'; "
                                 "its columns: customer_id, label_ts.")


@pytest.mark.parametrize("columns, words", [
    ({"customer_id": INT, "created": TS, "label_ts": TS}, "(several: created, label_ts)"),
    ({"customer_id": INT, "first_day": DAY, "label_ts": TZ}, "(several: first_day, label_ts)"),
    ({"customer_id": INT, "label_ts": TEXT}, "(none is a timestamp)"),  # strings are never guessed
    ({"customer_id": INT}, "(none is a timestamp)"),
    ({}, "(none is a timestamp)"),
])
def test_an_ambiguous_frame_asks_for_timestamp_column(columns, words):
    with pytest.raises(EntityFrameError) as raised:
        choose_timestamp_column(schema(**columns), None, "query")
    message = str(raised.value)
    assert message.startswith("Cannot tell which column of the entity query is the point in time ")
    assert words in message and message.endswith("pass timestamp_column=...")


# -- the kind of input ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, sql", [
    ("select * from labels", "select * from labels"),
    ("  SELECT 1 AS customer_id;  ", "SELECT 1 AS customer_id"),
    ("with x as (select 1) select * from x", "with x as (select 1) select * from x"),
    ("(select 1)", "(select 1)"),
    ("( ( select 1 ) )", "( ( select 1 ) )"),
    ("values (1, current_timestamp)", "values (1, current_timestamp)"),
    ("from labels", "from labels"),
    ("select 1;;", "select 1"),
])
def test_queries_are_recognised_and_trimmed(text, sql):
    source = entity_source(text)
    assert (source.table, source.sql, source.description) == (None, sql, "query")


@pytest.mark.parametrize("text, parts", [
    ("labels", ["labels"]),
    ("main.churn_labels", ["main", "churn_labels"]),
    ("shop.main.churn_labels", ["shop", "main", "churn_labels"]),
    ("_tmp.t$1", ["_tmp", "t$1"]),
    (" main.labels ; ", ["main", "labels"]),
])
def test_relation_names_become_a_template_with_their_parts(text, parts):
    source = entity_source(text)
    assert source.sql is None and source.table is None
    assert source.description == f"relation {'.'.join(parts)}"
    assert source.template == ("relation_probe", {"probe": "rows", "parts": parts})


@pytest.mark.parametrize("text", ["a.b.c.d", "main.labels where 1=1", "drop table labels", "labels; drop table x",
                                  "1abc", "main..labels", ""])
def test_text_that_is_neither_path_query_nor_relation_is_refused(text):
    with pytest.raises(EntityFrameError, match="is neither a .parquet/.csv path, a SQL query"):
        entity_source(text)


@pytest.mark.parametrize("value, kind", [(42, "int"), ({"customer_id": [1]}, "dict"), (None, "NoneType"),
                                         ([("a", 1)], "list")])
def test_other_python_objects_are_refused_naming_their_type(value, kind):
    with pytest.raises(EntityFrameError, match=f"^entity_df of type {kind} is not supported"):
        entity_source(value)


def test_arrow_tables_and_dataframes_are_rows_to_load():
    table = pa.table({"customer_id": [1, 2], "event_timestamp": [datetime(2024, 1, 1)] * 2})
    assert entity_source(table).table is table and entity_source(table).description == "Arrow table"
    frame = pd.DataFrame({"customer_id": pd.array([1, None], dtype="Int64"),
                          "event_timestamp": [datetime(2024, 1, 1)] * 2})
    source = entity_source(frame)
    assert source.description == "DataFrame" and source.table.column("customer_id").to_pylist() == [1, None]
    assert str(source.pandas_dtypes["customer_id"]) == "Int64"  # given back by to_df


def test_a_dataframe_arrow_cannot_hold_is_refused():
    frame = pd.DataFrame({"customer_id": [1, "two"], "event_timestamp": [datetime(2024, 1, 1)] * 2})
    with pytest.raises(EntityFrameError, match="^The entity DataFrame cannot be converted to Arrow"):
        entity_source(frame)


def test_csv_and_parquet_files_are_read_by_suffix_whatever_its_case(tmp_path):
    (tmp_path / "labels.CSV").write_text("customer_id,event_timestamp\n1,2024-01-01T00:00:00\n")
    pq.write_table(pa.table({"customer_id": [1, 2]}), tmp_path / "labels.parquet")
    from_csv = entity_source(str(tmp_path / "labels.CSV"))
    assert from_csv.table.num_rows == 1 and from_csv.description == f"file {tmp_path / 'labels.CSV'}"
    assert entity_source(tmp_path / "labels.parquet").table.column("customer_id").to_pylist() == [1, 2]


@pytest.mark.parametrize("make, words", [
    (lambda folder: folder / "missing.csv", "does not exist"),
    (lambda folder: folder, "is a directory; give a .parquet or .csv file"),
    (lambda folder: _written(folder / "broken.parquet", b"not parquet at all"), "Cannot read entity file"),
])
def test_an_unreadable_file_is_refused_naming_it(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(EntityFrameError) as raised:
        entity_source(path)
    assert str(path) in str(raised.value) and words in str(raised.value)


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- timestamps made naive UTC -------------------------------------------------------------------


def normalised(values, kind=None):
    table = pa.table({"customer_id": list(range(len(values))), "at": pa.array(values, type=kind)})
    out = normalise_timestamp(table, "at", "DataFrame")
    assert out.schema.field("at").type == TS and out.schema.names == ["customer_id", "at"]
    return out.column("at").to_pylist()


def test_zoned_timestamps_become_the_same_instant_in_naive_utc():
    berlin = timezone(timedelta(hours=2))
    values = [datetime(2024, 6, 1, 12, 0, tzinfo=berlin), None]
    assert normalised(values, pa.timestamp("us", tz="Europe/Berlin")) == [datetime(2024, 6, 1, 10, 0), None]


def test_naive_timestamps_are_taken_as_utc_and_kept():
    assert normalised([datetime(2024, 6, 1, 12, 0, 0, 123456)]) == [datetime(2024, 6, 1, 12, 0, 0, 123456)]


def test_nanoseconds_are_cut_to_microseconds():
    table = pa.table({"at": pa.array([1_700_000_000_123_456_789], type=pa.timestamp("ns"))})
    out = normalise_timestamp(table, "at", "DataFrame").column("at").to_pylist()
    assert out == [datetime(2023, 11, 14, 22, 13, 20, 123456)]


def test_dates_are_midnight():
    assert normalised([date(2024, 2, 29)]) == [datetime(2024, 2, 29)]


@pytest.mark.parametrize("text, instant", [
    ("2024-06-01T12:00:00", datetime(2024, 6, 1, 12)),
    ("2024-06-01 12:00:00", datetime(2024, 6, 1, 12)),
    ("2024-06-01T12:00:00+02:00", datetime(2024, 6, 1, 10)),
    ("2024-06-01T12:00:00Z", datetime(2024, 6, 1, 12)),
    ("2024-06-01", datetime(2024, 6, 1)),
])
def test_iso_strings_are_parsed_to_utc(text, instant):
    assert normalised([text]) == [instant]


@pytest.mark.parametrize("values, kind, words", [
    (["yesterday"], None, "row 0 holds 'yesterday', which is not an ISO 8601 time"),
    (["2024-01-02", None, "01/02/2024"], None, "row 2 holds '01/02/2024', which is not an ISO 8601 time"),
    ([1_700_000_000], pa.int64(), "has type int64; use timestamps, dates or ISO 8601 strings"),
    ([1.5], pa.float64(), "has type double"),
    ([True], pa.bool_(), "has type bool"),
])
def test_values_that_are_not_points_in_time_are_refused_naming_the_column(values, kind, words):
    with pytest.raises(EntityFrameError) as raised:
        normalised(values, kind)
    assert "The timestamp column 'at' of the entity DataFrame" in str(raised.value) and words in str(raised.value)
    assert "format=" not in str(raised.value)  # pandas' advice, for options our callers cannot pass


@pytest.mark.parametrize("kind, out", [
    (TS, TS), (TZ, TZ), (pa.timestamp("ns", tz="Europe/Berlin"), pa.timestamp("ns", tz="Europe/Berlin")),
    (DAY, DAY), (TEXT, TZ), (pa.large_string(), TZ),
])
def test_the_result_keeps_the_entity_timestamp_type_and_strings_become_utc(kind, out):
    assert output_timestamp_type(kind) == out


# -- column names and row numbers ----------------------------------------------------------------


def test_rows_are_numbered_in_input_order():
    table = with_row_numbers(pa.table({"customer_id": [3, 1, 3]}))
    assert table.schema.names == ["customer_id", ROW_COLUMN]
    assert table.column(ROW_COLUMN).to_pylist() == [0, 1, 2] and table.schema.field(ROW_COLUMN).type == INT


def test_a_frame_with_the_row_column_is_refused():
    with pytest.raises(EntityFrameError, match=f"has a column named {ROW_COLUMN}"):
        with_row_numbers(pa.table({"customer_id": [1], ROW_COLUMN: [0]}))


@pytest.mark.parametrize("names, message", [
    (["customer_id", "customer_id"], "The entity frame has the column 'customer_id' twice; rename one of them."),
    (["customer_id", "Customer_ID"],
     "The entity frame has the column 'Customer_ID' twice (as 'customer_id'); rename one of them."),
])
def test_column_names_compare_without_case(names, message):
    with pytest.raises(EntityFrameError) as raised:
        check_column_names(names, "frame")
    assert str(raised.value) == message


def test_distinct_column_names_pass():
    check_column_names(["customer_id", "customer_id_2", "event_timestamp"], "frame")


# -- join-key types ------------------------------------------------------------------------------


@pytest.mark.parametrize("mine, theirs", [
    (INT, INT), (pa.int32(), INT), (INT, pa.float64()), (pa.decimal128(18, 0), INT),
    (pa.float32(), pa.decimal128(10, 2)), (TEXT, TEXT), (pa.large_string(), TEXT), (TS, DAY), (DAY, TZ),
    (pa.null(), TEXT), (pa.null(), INT),
])
def test_comparable_key_types_pass(mine, theirs):
    check_key_types(schema(customer_id=mine), "customer_features", schema(customer_id=theirs),
                    [("customer_id", "customer_id")], "DataFrame")


@pytest.mark.parametrize("mine, theirs", [(TEXT, INT), (INT, TEXT), (pa.bool_(), INT), (TS, TEXT), (DAY, INT)])
def test_a_key_of_another_type_is_refused_with_the_conversion_to_make(mine, theirs):
    with pytest.raises(EntityFrameError) as raised:
        check_key_types(schema(cid=mine), "customer_features", schema(customer_id=theirs), [("cid", "customer_id")],
                        "DataFrame")
    message = str(raised.value)
    assert message.startswith(f"Join key 'cid' of the entity DataFrame is {mine} but 'customer_features.customer_id' "
                              f"is {theirs}")
    assert "df['cid'] = df['cid'].astype(str)" in message


def test_a_missing_key_lists_the_frame_columns_but_the_row_number():
    entity = schema(store_id=INT, event_timestamp=TS, **{ROW_COLUMN: INT})
    with pytest.raises(EntityFrameError) as raised:
        check_key_types(entity, "customer_features", schema(customer_id=INT), [("customer_id", "customer_id")], "query")
    assert str(raised.value) == ("The entity query has no column 'customer_id', a join key of feature view "
                                 "'customer_features'; its columns: store_id, event_timestamp.")


def test_every_key_of_a_composite_entity_is_checked():
    entity = schema(customer_id=INT, product_type=INT)
    view = schema(customer_id=INT, product_type=TEXT)
    with pytest.raises(EntityFrameError, match="Join key 'product_type'"):
        check_key_types(entity, "customer_product_features", view,
                        [("customer_id", "customer_id"), ("product_type", "product_type")], "DataFrame")

