"""CSV feature columns of numbers with stray text: refused, or categorical when plausibly meant."""

from __future__ import annotations

import pandas as pd
import pytest

from dlforge.config.schema import DataConfig
from dlforge.data.sources import load_dataset
from dlforge.data.validate import validate
from dlforge.errors import DataError


def write_csv(tmp_path, size: list[object], name: str = "d.csv") -> str:
    """A table with a numeric column `w`, the column `size` as given, and labels x/y."""
    n = len(size)
    frame = pd.DataFrame({"w": [float(i) for i in range(n)], "size": size,
                          "label": ["x", "y"] * (n // 2) + ["x"] * (n % 2)})
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def _error(path: str, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(source="csv", path=path, **kwargs))
    return str(info.value)


def test_one_text_cell_in_a_numeric_column_is_refused_with_its_line(tmp_path):
    size: list[object] = [str(i * 1.5) for i in range(200)]
    size[5] = "abc"
    assert _error(write_csv(tmp_path, size)) == (
        "data: column 'size' of d.csv holds numbers except for 1 value: 'abc' (line 7); fix or "
        "remove it, or list the column in data.categorical_columns if it is categorical")


def test_several_text_cells_list_the_first_five_and_the_count(tmp_path):
    size: list[object] = list(range(100))
    for row, text in zip([3, 10, 11, 40, 50, 60, 70], ["?", "n/a ", "?", "x", "y", "z", "?"],
                         strict=True):
        size[row] = text
    assert _error(write_csv(tmp_path, size)) == (
        "data: column 'size' of d.csv holds numbers except for 7 values: '?' (line 5), "
        "'n/a ' (line 12), '?' (line 13), 'x' (line 42), 'y' (line 52) and 2 more; fix or "
        "remove them, or list the column in data.categorical_columns if it is categorical")


def test_a_listed_categorical_column_may_hold_numbers_and_text(tmp_path):
    size: list[object] = list(range(20))
    size[5] = "abc"
    ds = load_dataset(DataConfig(source="csv", path=write_csv(tmp_path, size),
                                 categorical_columns=["size"]))
    assert isinstance(ds.x["size"].dtype, pd.CategoricalDtype)
    assert "mixes numbers" not in " ".join(validate(ds).warnings)


def test_a_column_with_much_text_is_categorical_with_a_warning(tmp_path):
    size: list[object] = ["1", "2", "3", "4+", "big"] * 4   # 8 text cells of 20: plausibly categorical
    ds = load_dataset(DataConfig(source="csv", path=write_csv(tmp_path, size)))
    assert sorted(ds.x["size"].astype(str).unique()) == ["1", "2", "3", "4+", "big"]
    assert validate(ds).warnings == [
        "data: column 'size' mixes numbers (12 values) and text (8 values, e.g. '4+', 'big') and "
        "is read as categorical, one feature per distinct value; list it in "
        "data.categorical_columns if that is meant, else fix the text values"]


def test_the_threshold_is_ninety_percent_numbers(tmp_path):
    size: list[object] = list(range(20))
    size[0], size[1] = "a", "b"                                     # 18 of 20 numbers: refused
    assert "holds numbers except for 2 values" in _error(write_csv(tmp_path, size))
    size[2] = "c"                                                   # 17 of 20: a warning
    ds = load_dataset(DataConfig(source="csv", path=write_csv(tmp_path, size)))
    assert [w.split(" and is")[0] for w in validate(ds).warnings] == [
        "data: column 'size' mixes numbers (17 values) and text (3 values, e.g. 'a', 'b', 'c')"]


def test_a_label_column_of_numbers_with_a_typo_is_refused_not_a_new_class(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("w,price\n" + "".join(f"{i},{'12.5O' if i == 8 else i * 1.5}\n" for i in range(30)))
    assert _error(str(path), label_columns=["price"]) == (
        "data: column 'price' of d.csv holds numbers except for 1 value: '12.5O' (line 10); fix "
        "it or drop its row")
