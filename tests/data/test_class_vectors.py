"""Class description vectors: the shipped attribute tables, a user's CSV or npy, and one line per mistake."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.data import CLASS_NAMES
from replearn.data.class_vectors import attribute_table, read_class_vectors
from replearn.errors import ReplearnError

FASHION = CLASS_NAMES["fashion"]


@pytest.mark.parametrize("dataset, width", [("mnist", 8), ("fashion", 12)])
def test_shipped_tables_define_every_attribute_in_one_line(dataset, width):
    table = attribute_table(dataset, CLASS_NAMES[dataset])
    assert table.vectors.shape == (10, width) and np.isfinite(table.vectors).all()
    assert set(table.definitions) == set(table.columns)  # one definition per attribute
    assert all(table.definitions[c] and "\n" not in table.definitions[c] for c in table.columns)
    assert len({tuple(v) for v in table.vectors}) == 10  # every class described differently


def _csv(tmp_path, text, name="v.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _rows(names, width=3, header=True):
    lines = ["class," + ",".join(f"a{j}" for j in range(width))] if header else []
    return "\n".join(lines + [f"{n}," + ",".join(str((i + j) % 3) for j in range(width)) for i, n in enumerate(names)])


def test_csv_with_or_without_header_in_any_row_order(tmp_path):
    a = read_class_vectors(_csv(tmp_path, _rows(FASHION)), FASHION)
    assert a.vectors.shape == (10, 3) and a.columns == ["a0", "a1", "a2"]
    shuffled = _rows(FASHION, header=False).splitlines()[::-1]
    b = read_class_vectors(_csv(tmp_path, "\n".join(shuffled).lower(), "b.csv"), FASHION)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    digits = read_class_vectors(_csv(tmp_path, _rows([str(d) for d in range(10)]), "d.csv"), CLASS_NAMES["mnist"])
    assert digits.vectors.shape == (10, 3)


def test_npy_rows_in_class_order(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, np.arange(20.0).reshape(10, 2))
    assert read_class_vectors(path, FASHION).vectors[9].tolist() == [18.0, 19.0]


@pytest.mark.parametrize("text, match", [
    (_rows(FASHION[:-1]), "no row for class 'Ankle boot'"),
    (_rows(FASHION) + "\nBag,1,2", "class 'Bag' appears twice"),
    (_rows(FASHION).replace("Sandal,2,0,1", "Sandal,2,0"), "class 'Sandal' has 2 values; the header has 3"),
    (_rows(FASHION).replace("Sandal,2,0,1", "Sandal,2,nan,1"), "class 'Sandal' holds 'nan'"),
    (_rows(FASHION).replace("Sandal,2,0,1", "Sandal,2,,1"), "class 'Sandal' holds ''"),
    (_rows(FASHION).replace("Sneaker,", "Sneakers,"), "'Sneakers', which is not a class; did you mean 'Sneaker'"),
    ("", "is empty"),
])
def test_bad_csv_is_one_line_naming_the_class(tmp_path, text, match):
    with pytest.raises(ReplearnError, match=match) as exc:
        read_class_vectors(_csv(tmp_path, text), FASHION)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("array, match", [
    (np.zeros((9, 3)), "has 9 rows; the data set has 10 classes"),
    (np.where(np.arange(30).reshape(10, 3) == 25, np.nan, 1.0), "class 'Bag' holds NaN"),
    (np.zeros(10), "expected numbers"),
])
def test_bad_npy_is_one_line(tmp_path, array, match):
    path = tmp_path / "v.npy"
    np.save(path, array)
    with pytest.raises(ReplearnError, match=match):
        read_class_vectors(path, FASHION)


def test_missing_or_foreign_file(tmp_path):
    with pytest.raises(ReplearnError, match="no such file"):
        read_class_vectors(tmp_path / "nope.csv", FASHION)
    with pytest.raises(ReplearnError, match=r"expected a \.csv or \.npy"):
        read_class_vectors(_csv(tmp_path, "x", "v.txt"), FASHION)
    with pytest.raises(ReplearnError, match="no attribute table"):
        attribute_table("cifar", FASHION)
