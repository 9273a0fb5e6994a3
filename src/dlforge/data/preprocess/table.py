"""Tables: impute, scale numeric columns, one-hot categorical ones, optionally project by PCA.

Everything is fitted on the training split and stored as plain lists, then applied with numpy,
so the serving path needs neither scikit-learn objects nor pickle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from dlforge.config.schema import TablePreprocess
from dlforge.data.preprocess.base import Preprocessor
from dlforge.data.values import scaling_overflow_line
from dlforge.errors import ConfigError, DataError


class TablePreprocessor(Preprocessor):
    """Float32 features `(N, F)`: numeric columns first (in column order), then one-hot blocks.

    - Numeric columns (numeric or bool dtype): missing values take the training median or mean
      (`impute`; with `none` a NaN is a DataError naming the column), then
      `(x - center) / scale` with the training mean/std (`standard`) or min/range (`minmax`);
      a constant column keeps scale 1. A boolean (True/False, JSON true/false) is taken as
      1/0 only by a column that was boolean in training (`"boolean": true` in its state);
      where it is `false` a boolean is a DataError naming the column and row, never a silent
      1 or 0. A bundle written before the flag existed (no `"boolean"` key) takes booleans
      as 1/0, as it always did.
    - Categorical columns (any other dtype, e.g. object or category): values are compared as
      strings; missing values take the most frequent training value (ties: the smallest
      string); each column becomes one 0/1 feature per training category, sorted. A category
      never seen in training becomes all zeros rather than an error.
    - `pca_components`: project the features onto that many principal components, fitted on
      the training features (scikit-learn's PCA, no whitening).

    Columns that were not in the training table are ignored at transform time; a training
    column that is missing is a DataError. `transform` also takes a list of row dicts.
    """

    kind = "table"
    config_type = TablePreprocess

    def __init__(self, cfg: TablePreprocess) -> None:
        super().__init__(cfg)
        self.numeric: list[dict[str, Any]] = []
        self.categorical: list[dict[str, Any]] = []
        self.pca: dict[str, list] | None = None

    def fit(self, x_raw: Any) -> TablePreprocessor:
        """Learn fill values, scaling, categories and PCA from the training table.

        Raises:
            DataError: no rows, a NaN with `impute: none`, or a column with no values at all.
            ConfigError: `pca_components` exceeds the number of features or training rows.
        """
        df = _as_frame(x_raw)
        if len(df) == 0 or df.shape[1] == 0:
            raise DataError(f"input: expected a training table with rows and columns, got shape {df.shape}")
        num_cols = [c for c in df.columns if _is_numeric(df[c])]
        cat_cols = [c for c in df.columns if c not in num_cols]
        unfilled = [c for c in df.columns if (c in num_cols and self.cfg.impute == "none")
                    or (c in cat_cols and self.cfg.categorical_impute == "none")]
        problems = [_missing_problem(int(df[c].isna().sum()), c,
                                     "impute" if c in num_cols else "categorical_impute")
                    for c in unfilled if df[c].isna().any()]
        problems += [_empty_problem(c) for c in df.columns if c not in unfilled and df[c].isna().all()]
        if problems:
            raise DataError("\n".join(problems))
        self.numeric = self._fit_numeric(df, num_cols)
        impute = self.cfg.categorical_impute == "most_frequent"
        self.categorical = [_fit_categorical(df[c], c, impute) for c in cat_cols]
        self.pca = None
        if self.cfg.pca_components is not None:
            self.pca = self._fit_pca(self._features(df))
        self.fitted = True
        return self

    def fit_chunks(self, chunks: Iterable[pd.DataFrame]) -> TablePreprocessor:
        """`fit` from consecutive pieces of a training table (a streaming pass): float64 sums
        give the mean/std (population, as scikit-learn's) or min/max. A column of bool dtype
        in every piece is recorded as boolean, as `fit` records it; a column that is not
        numeric (object dtype in every piece) is categorical, its categories and most frequent
        value counted over the pieces, as `fit` finds them.

        Raises:
            ConfigError: median imputation or PCA (they need every row at once).
            DataError: no rows, a NaN with `impute: none`, a missing category with
                `categorical_impute: none`, or a categorical column with no values at all.
        """
        cfg = self.cfg
        if cfg.impute == "median" or cfg.pca_components is not None:
            raise ConfigError("preprocess.table: median imputation and pca_components need the "
                              "whole training table; with data.streaming use impute mean or none "
                              "and no PCA")
        stats, categories = _ColumnStats(), _CategoryCounts()
        with np.errstate(over="ignore", invalid="ignore"):  # refused by _check_scaling
            for part in chunks:
                numeric = [c for c in part.columns if _is_numeric(part[c])]
                stats.add(part[numeric], impute=cfg.impute != "none")
                categories.add(part.drop(columns=numeric))
            if stats.columns is None:
                raise DataError("input: expected a training table with rows and columns, got none")
            center, scale = stats.scaling(cfg.scaling)
        _check_scaling(stats.columns, center, scale, cfg.scaling)
        fills = stats.mean() if cfg.impute == "mean" else None
        self.numeric = [{"name": c, "fill": None if fills is None else float(fills[i]),
                         "center": float(center[i]), "scale": float(scale[i]),
                         "boolean": bool(stats.boolean[i])}
                        for i, c in enumerate(stats.columns)]
        self.categorical = categories.specs(cfg.categorical_impute)
        self.pca, self.fitted = None, True
        return self

    def transform(self, x_raw: Any) -> np.ndarray:
        """Features of a DataFrame (or list of row dicts) as float32 `(N, F)`.

        Raises:
            DataError: a training column is missing, holds a non-number (a boolean, unless
                the column was boolean in training) where a number is expected, a number
                that is not finite in float32 once scaled (inf, 1e39), or has a missing
                value that no imputation covers.
        """
        self._check_fitted()
        features = self._features(_as_frame(x_raw))
        if self.pca is not None:
            mean = np.asarray(self.pca["mean"])
            components = np.asarray(self.pca["components"])
            features = (features - mean) @ components.T
        return np.ascontiguousarray(features, dtype=np.float32)

    @property
    def feature_names(self) -> list[str]:
        """Name of each output feature (before PCA): `col`, or `col=category` for one-hot."""
        self._check_fitted()
        if self.pca is not None:
            return [f"pc{i + 1}" for i in range(len(self.pca["components"]))]
        return [s["name"] for s in self.numeric] + [
            f"{s['name']}={cat}" for s in self.categorical for cat in s["categories"]]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (len(self.feature_names),)

    def _fit_numeric(self, df: pd.DataFrame, cols: list[str]) -> list[dict[str, Any]]:
        if not cols:
            return []
        values = df[cols].astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # refused by _check_scaling
            fills = values.median() if self.cfg.impute == "median" else values.mean()
            filled = values.fillna(fills).to_numpy() if self.cfg.impute != "none" else values.to_numpy()
            if self.cfg.scaling == "standard":
                scaler = StandardScaler().fit(filled)  # its scale_ is 1 where var_ overflowed
                center = scaler.mean_
                scale = np.where(np.isfinite(scaler.var_), scaler.scale_, np.inf)
            elif self.cfg.scaling == "minmax":
                scaler = MinMaxScaler().fit(filled)
                center = scaler.data_min_
                scale = np.where(scaler.data_range_ > 0, scaler.data_range_, 1.0)
            else:
                center, scale = np.zeros(len(cols)), np.ones(len(cols))
        _check_scaling(cols, center, scale, self.cfg.scaling)
        return [{"name": c, "fill": None if self.cfg.impute == "none" else float(fills[c]),
                 "center": float(m), "scale": float(s),
                 "boolean": bool(pd.api.types.is_bool_dtype(df[c].dtype))}
                for c, m, s in zip(cols, center, scale, strict=True)]

    def _fit_pca(self, features: np.ndarray) -> dict[str, list]:
        n = self.cfg.pca_components
        limit = min(features.shape)
        if n > limit:
            raise ConfigError(
                f"preprocess.table.pca_components: must be at most min(features, training rows) "
                f"= min{features.shape[::-1]} = {limit} (got {n})")
        pca = PCA(n_components=n, svd_solver="full").fit(features)
        return {"components": pca.components_.tolist(), "mean": pca.mean_.tolist()}

    def _features(self, df: pd.DataFrame) -> np.ndarray:
        """Imputed, scaled and one-hot features (float64) of `df`, before PCA."""
        needed = [s["name"] for s in self.numeric + self.categorical]
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise DataError(f"input: missing {missing_columns(missing)} (the model was trained "
                            f"on columns {needed})")
        blocks = [np.empty((len(df), 0))]
        blocks += [_apply_numeric(df[s["name"]], s) for s in self.numeric]
        blocks += [_apply_categorical(df[s["name"]], s) for s in self.categorical]
        return np.concatenate(blocks, axis=1)

    def _state(self) -> dict[str, Any]:
        return {"numeric": self.numeric, "categorical": self.categorical, "pca": self.pca}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.numeric = [dict(s) for s in state["numeric"]]
        self.categorical = [dict(s) for s in state["categorical"]]
        self.pca = state["pca"]


def _as_frame(x_raw: Any) -> pd.DataFrame:
    """A DataFrame from a DataFrame or a list of row dicts (a serving request)."""
    if isinstance(x_raw, pd.DataFrame):
        return x_raw
    if isinstance(x_raw, list) and all(isinstance(row, dict) for row in x_raw):
        return pd.DataFrame.from_records(x_raw)
    raise DataError(f"input: expected a table (DataFrame or list of row objects), "
                    f"got {type(x_raw).__name__}")


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype)


def _empty_problem(name: str) -> str:
    return f"column {name!r}: every training value is missing; drop the column"


def _missing_problem(missing: int, name: str, key: str) -> str:
    return (f"column {name!r}: {missing} missing value(s) in the training split; "
            f"set preprocess.table.{key} to fill them (got 'none')")


def _fit_categorical(col: pd.Series, name: str, impute: bool) -> dict[str, Any]:
    return _categorical_spec(col.dropna().astype(str).value_counts(), name, impute)


def _categorical_spec(counts: pd.Series, name: str, impute: bool) -> dict[str, Any]:
    """A categorical column's state from the counts of its (string) values."""
    # Most frequent, ties broken by the smallest string so the choice never depends on order.
    fill = min(counts.index[counts == counts.max()]) if impute else None
    return {"name": name, "fill": fill, "categories": sorted(counts.index)}


def _apply_numeric(col: pd.Series, spec: dict[str, Any]) -> np.ndarray:
    name = spec["name"]
    if spec.get("boolean") is False:  # no key: a bundle from before the flag, 1/0 as then
        _refuse_booleans(col, name)
    values = pd.to_numeric(col, errors="coerce")
    bad = col[values.isna() & col.notna()]
    if len(bad):
        raise DataError(f"column {name!r}: expected numbers, got {bad.iloc[0]!r} "
                        f"({len(bad)} non-numeric value(s))")
    values = values.astype(np.float64)
    if values.isna().any():
        if spec["fill"] is None:
            raise DataError(f"column {name!r}: {int(values.isna().sum())} missing value(s) and "
                            f"preprocess.table.impute was 'none' at training; fill them before predicting")
        values = values.fillna(spec["fill"])
    scaled = (values.to_numpy() - spec["center"]) / spec["scale"]
    _check_float32(scaled, values, name)
    return scaled[:, None]


def _refuse_booleans(col: pd.Series, name: str) -> None:
    """A boolean where the model learned numbers would be read as 1 or 0 without a word: refuse
    it, naming the row by `col`'s index (the caller's numbering, as `_check_float32`)."""
    if pd.api.types.is_bool_dtype(col.dtype):
        flags = col.notna().to_numpy()
    elif col.dtype == object:
        flags = np.fromiter((isinstance(v, (bool, np.bool_)) for v in col), dtype=bool, count=len(col))
    else:
        return
    if flags.any():
        first = int(np.argmax(flags))
        value = "true" if col.iloc[first] else "false"  # as a JSON client sent it
        raise DataError(f"column {name!r}: expected numbers, got {value} (row "
                        f"{col.index[first]}; {int(flags.sum())} boolean value(s)); only a column "
                        f"that was boolean in training takes true/false: send a number")


def _check_scaling(cols: list[str], center: np.ndarray, scale: np.ndarray, kind: str) -> None:
    """Refuse a column whose scaling overflows float64 (values such as 1e300: their squares
    are infinite): every scaled value would be NaN or 0. Raw values beyond float32 whose
    scaling is finite (1e40) are fine: they are scaled in float64.

    Raises:
        DataError: naming the first such column.
    """
    bad = np.flatnonzero(~(np.isfinite(center) & np.isfinite(scale)))
    if len(bad):
        raise DataError(scaling_overflow_line(cols[int(bad[0])], kind))


def _check_float32(scaled: np.ndarray, raw: pd.Series, name: str) -> None:
    """Refuse values that are not finite float32 numbers once scaled: the model would answer
    inf or NaN (or a confident class) for them, never an error. The row is named by `raw`'s
    index (the caller's numbering: `dlforge predict` counts across the file)."""
    bad = np.flatnonzero(~(np.abs(scaled) <= np.finfo(np.float32).max))
    if len(bad):
        row = raw.index[bad[0]]
        raise DataError(f"column {name!r}: value {raw.iloc[bad[0]]:g} (row {row}) is not a finite "
                        f"number within float32's range (about 3.4e38) after the training's "
                        f"scaling ({len(bad)} such value(s)); send finite values of the size "
                        f"the model was trained on")


def _apply_categorical(col: pd.Series, spec: dict[str, Any]) -> np.ndarray:
    missing = col.isna().to_numpy()
    if missing.any() and spec["fill"] is None:
        raise DataError(f"column {spec['name']!r}: {int(missing.sum())} missing value(s) and "
                        f"preprocess.table.categorical_impute was 'none' at training")
    values = col.astype(object).where(~missing, spec["fill"]).astype(str)
    codes = pd.Index(spec["categories"]).get_indexer(values)  # unseen -> -1
    onehot = np.zeros((len(col), len(spec["categories"])))
    seen = codes >= 0
    onehot[np.flatnonzero(seen), codes[seen]] = 1.0
    return onehot


class _ColumnStats:
    """Running float64 count, sum, sum of squares, min and max per numeric column, and
    whether it was of bool dtype in every piece."""

    def __init__(self) -> None:
        self.columns: list[str] | None = None

    def add(self, part: pd.DataFrame, *, impute: bool) -> None:
        values = part.to_numpy(dtype=np.float64)
        if not impute and np.isnan(values).any():
            col = part.columns[np.isnan(values).any(axis=0)][0]
            raise DataError(_missing_problem(int(part[col].isna().sum()), col, "impute"))
        if self.columns is None:
            self.columns = [str(c) for c in part.columns]
            self.n, self.total, self.total_sq = (np.zeros(values.shape[1]) for _ in range(3))
            self.rows = 0
            self.low, self.high = np.full(values.shape[1], np.inf), np.full(values.shape[1], -np.inf)
            self.boolean = np.ones(values.shape[1], dtype=bool)
        self.boolean &= [pd.api.types.is_bool_dtype(t) for t in part.dtypes]
        seen = ~np.isnan(values)
        self.rows += len(values)
        self.n += seen.sum(axis=0)
        self.total += np.where(seen, values, 0).sum(axis=0)
        self.total_sq += np.where(seen, np.square(values), 0).sum(axis=0)
        self.low, self.high = np.fmin(self.low, np.nanmin(values, axis=0)), np.fmax(
            self.high, np.nanmax(values, axis=0))

    def mean(self) -> np.ndarray:
        return self.total / np.maximum(self.n, 1)

    def scaling(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(center, scale) for `standard`, `minmax` or `none`; a constant column keeps scale 1."""
        if kind == "standard":
            # Missing values are filled with the mean before scaling, as in `fit`: they add
            # rows at the mean, so E[x^2] counts them at mean^2.
            mean = self.mean()
            square = (self.total_sq + (self.rows - self.n) * np.square(mean)) / max(self.rows, 1)
            std = np.sqrt(np.maximum(square - np.square(mean), 0.0))
            return mean, np.where(std == 0, 1.0, std)  # NaN (overflow) kept for _check_scaling
        if kind == "minmax":
            span = self.high - self.low
            return self.low, np.where(span > 0, span, 1.0)
        return np.zeros(len(self.n)), np.ones(len(self.n))


class _CategoryCounts:
    """Running counts of each categorical column's values (as strings) and missing cells."""

    def __init__(self) -> None:
        self.counts: dict[str, pd.Series] = {}
        self.missing: dict[str, int] = {}

    def add(self, part: pd.DataFrame) -> None:
        for c in part.columns:
            counts = part[c].dropna().astype(str).value_counts()
            self.counts[c] = self.counts[c].add(counts, fill_value=0) if c in self.counts else counts
            self.missing[c] = self.missing.get(c, 0) + int(part[c].isna().sum())

    def specs(self, categorical_impute: str) -> list[dict[str, Any]]:
        """The columns' states, as `fit` makes them.

        Raises:
            DataError: missing values with `categorical_impute: none`, or a column without
                values, one line per column.
        """
        problems = [_missing_problem(n, c, "categorical_impute")
                    for c, n in self.missing.items() if n and categorical_impute == "none"]
        problems += [_empty_problem(c) for c, counts in self.counts.items()
                     if counts.empty and categorical_impute != "none"]
        if problems:
            raise DataError("\n".join(problems))
        impute = categorical_impute == "most_frequent"
        return [_categorical_spec(counts, c, impute) for c, counts in self.counts.items()]


def missing_columns(names: list[str]) -> str:
    """The columns an input lacks, named once in one line.

    Example:
        >>> missing_columns(["age"]), missing_columns(["age", "city"])
        ("column 'age'", "columns 'age', 'city'")
    """
    return f"column{'s' if len(names) > 1 else ''} {', '.join(map(repr, names))}"
