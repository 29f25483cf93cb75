"""The labelled production rows an alert retrains on, built without pandas, and written as CSV that
training reads back the way pandas wrote it before."""
import csv
import io

from lifecycle.core.labelled_rows import labelled_rows, rows_to_csv


def test_only_labelled_requests_are_kept_once_each_as_last_collected_with_the_label_in_the_target():
    inputs = [{"age": 30, "region": "north", "request_id": "a"},
              {"age": 41, "region": "south", "request_id": "b"},
              {"age": 52, "region": "east"},                          # no request id: cannot be joined
              {"age": 31, "region": "north", "request_id": "a"},      # collected again (a retried request)
              {"age": 63, "region": "west", "request_id": 7}]         # ids compare as text, as labels are keyed
    rows = labelled_rows(inputs, {"a": 1, "7": 0, "zzz": 1}, "default")
    assert rows == [{"age": 31, "region": "north", "default": 1}, {"age": 63, "region": "west", "default": 0}]
    assert labelled_rows(inputs, {}, "default") == []


def test_the_csv_has_every_column_and_leaves_missing_values_empty():
    rows = [{"age": 31, "income": None, "default": 1}, {"age": 63, "income": 1000.5, "plan": "basic", "default": 0}]
    text = rows_to_csv(rows).decode()
    assert text.splitlines()[0] == "age,income,default,plan"
    read = list(csv.DictReader(io.StringIO(text)))
    assert read == [{"age": "31", "income": "", "default": "1", "plan": ""},
                    {"age": "63", "income": "1000.5", "default": "0", "plan": "basic"}]


def test_text_with_commas_quotes_and_newlines_survives_the_round_trip():
    rows = [{"note": 'said "no", then\nleft', "default": 1}]
    assert list(csv.DictReader(io.StringIO(rows_to_csv(rows).decode()))) == [{"note": 'said "no", then\nleft',
                                                                              "default": "1"}]
