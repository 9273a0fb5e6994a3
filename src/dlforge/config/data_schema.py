"""Config sections for data: source and splits, preprocessing, augmentation, balance."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from dlforge.config.base import Section

# --------------------------------------------------------------------------------------- data

SourceName = Literal["builtin", "idx", "cifar", "image_folder", "csv", "npz", "imdb", "shards"]
TaskKind = Literal["multiclass", "binary", "multilabel", "regression", "anomaly"]


def _name_of(value: object) -> object:
    """A class given as a whole number (YAML reads `classes: [0, 1]` and `--set
    data.classes=[0,1]` as ints) is named by its digits, as sources name numeric labels."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


ClassName = Annotated[str, BeforeValidator(_name_of)]
Side = Annotated[int, Field(ge=1)]


class DataConfig(Section):
    source: SourceName = Field("builtin", description="Kind of source the data comes from.")
    name: str | None = Field(
        "digits",
        description="builtin: digits|breast_cancer|wine|diabetes; idx: mnist|fashion_mnist; "
        "cifar: cifar10|cifar100. Ignored by image_folder, csv, npz and imdb.",
    )
    path: str | None = Field(
        None, description="File or directory to read. idx/cifar/imdb: overrides the search "
        "order (imdb: the aclImdb directory or aclImdb_v1.tar.gz); shards: the directory "
        "`dlforge data shard` wrote. Relative paths (here, in cache_dir and exclude_file) are "
        "relative to the config file, or given with --set to the working directory; runs store "
        "them absolute."
    )
    streaming: bool | Literal["auto"] = Field(
        False, description="shards, image_folder, csv (numeric): stream the training split "
        "from disk in background workers instead of loading it (auto: shards only, when their "
        "decoded size is above 1 GiB). See docs/data.md.")
    workers: int = Field(
        2, ge=0, le=64, description="Background processes reading a streamed split (0: read "
        "in the training process).")
    task: TaskKind | None = Field(
        None, description="Task type; inferred from the labels if unset (anomaly when "
        "data.normal_classes is given).")
    # csv
    label_columns: list[str] = Field(
        default_factory=lambda: ["label"],
        description="csv: label column, several for multi-label (0/1 columns), or the regression target.",
    )
    text_column: str | None = Field(None, description="csv: the column holding text (a text task).")
    feature_columns: list[str] | None = Field(
        None, description="csv tables: feature columns; default all columns but labels and split."
    )
    categorical_columns: list[str] | None = Field(
        None, description="csv tables: categorical columns; default the non-numeric ones."
    )
    split_column: str | None = Field(
        None, description="csv: column with values train/val/test fixing each row's split."
    )
    positive_class: ClassName | None = Field(
        None, description="binary: name of the positive (rare, e.g. 'defect') class; default the second."
    )
    # images
    image_size: tuple[Side, Side] | None = Field(
        None, description="image_folder: resize every image to (height, width)."
    )
    color: Literal["grayscale", "rgb"] = Field("grayscale", description="image_folder: channels.")
    # splitting
    val_fraction: float = Field(0.15, gt=0, lt=1, description="Share of samples for validation.")
    test_fraction: float = Field(
        0.15, gt=0, lt=1, description="Share held out for test (when the source has no test set)."
    )
    stratify: bool = Field(True, description="Keep class ratios equal across splits.")
    test_distribution: Literal["natural"] = Field(
        "natural",
        description="The test split keeps the source's class ratio; resampling touches train only.",
    )
    classes: list[ClassName] | None = Field(
        None, description="Keep only these classes (by name), in this order; a whole number "
        "names the class of that label (classes: [0, 1] is ['0', '1']), here and in every "
        "class-name key."
    )
    binary_from: dict[ClassName, list[ClassName]] | None = Field(
        None,
        description="Build a binary task from class names: {positive_name: [classes...]}; "
        "every other class becomes the negative class. E.g. {defect: [Sandal]}.",
    )
    negative_name: str = Field("ok", description="Name of the negative class built by binary_from.")
    positive_fraction: float | None = Field(
        None, gt=0, lt=1,
        description="With binary_from: subsample positives so they are this share of all samples.",
    )
    normal_classes: list[ClassName] | None = Field(
        None, description="Anomaly detection: the classes that are normal; the model learns "
        "them only. Every other class is an anomaly (or data.anomaly_classes).",
    )
    anomaly_classes: list[ClassName] | None = Field(
        None, description="With normal_classes: the classes that are anomalies; samples of "
        "any class in neither list are dropped. Default: every class not normal.",
    )
    limit: int | None = Field(
        None, ge=10, description="Use at most this many samples (stratified), for quick runs."
    )
    cache_dir: str | None = Field(
        None, description="Download cache; default $DLFORGE_CACHE or ~/.cache/dlforge."
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Sample ids (`dlforge data review`: file paths, or row numbers from 0) to "
        "leave out of the training split; validation and test keep theirs.",
    )
    exclude_file: str | None = Field(
        None, description="A file of sample ids to leave out of training, one per line "
        "(`dlforge data review --drop-top N` writes one); added to data.exclude.",
    )
    flip_labels: float | None = Field(
        None, gt=0, lt=0.5,
        description="Experiments only: give this share of the training samples another class "
        "(seeded by `seed`) to measure how well `dlforge data review` finds them.",
    )

    @model_validator(mode="after")
    def _source_needs(self) -> DataConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"data.val_fraction + data.test_fraction: must be less than 1 "
                f"(got {self.val_fraction} + {self.test_fraction})"
            )
        if self.source in ("image_folder", "csv", "npz", "shards") and not self.path:
            raise ValueError(f"data.path: required for source {self.source!r} (got null)")
        allowed = {
            "builtin": ("digits", "breast_cancer", "wine", "diabetes"),
            "idx": ("mnist", "fashion_mnist"),
            "cifar": ("cifar10", "cifar100"),
        }.get(self.source)
        if allowed and self.name not in allowed:
            raise ValueError(
                f"data.name: must be one of {', '.join(allowed)} for source {self.source!r} "
                f"(got {self.name!r})"
            )
        return self

    @model_validator(mode="after")
    def _columns_agree(self) -> DataConfig:
        """A label column given twice, or a label or split column given as an input too
        (features, categorical or text: the model would read its answer). Only for the csv
        source, the one that reads these keys: the others ignore them."""
        if self.source != "csv":
            return self
        labels = self.label_columns
        if not labels:
            raise ValueError("data.label_columns: give at least one label column (got [])")
        twice = sorted({c for c in labels if labels.count(c) > 1})
        if twice:
            raise ValueError(f"data.label_columns: names {', '.join(map(repr, twice))} more than "
                             f"once (got {labels}); give each column once")
        answers = {**dict.fromkeys(labels, "data.label_columns"), self.split_column: "data.split_column"}
        inputs = [("data.feature_columns", c) for c in self.feature_columns or []]
        inputs += [("data.categorical_columns", c) for c in self.categorical_columns or []]
        inputs += [("data.text_column", self.text_column)] if self.text_column else []
        clash = [(key, c) for key, c in inputs if c in answers]
        if clash:
            key, column = clash[0]
            fix = "name the text column" if key == "data.text_column" else f"leave it out of {key}"
            raise ValueError(f"{key}: {column!r} is also given as {answers[column]}; a model must "
                             f"not read its label or split as an input: {fix}")
        return self


# --------------------------------------------------------------------------------- preprocess


class ImagePreprocess(Section):
    scale: bool = Field(True, description="Divide pixel values by 255 (uint8 sources) to [0, 1].")
    standardize: bool = Field(True, description="Per-channel mean/std fitted on the train split "
                              "(a dcgan's default: false, its generator outputs pixels in [0, 1]).")


class TablePreprocess(Section):
    scaling: Literal["standard", "minmax", "none"] = Field(
        "standard", description="Numeric columns: standardization or min-max normalization."
    )
    impute: Literal["none", "median", "mean"] = Field(
        "none", description="Numeric missing values; 'none' makes NaN a data error."
    )
    categorical_impute: Literal["none", "most_frequent"] = Field(
        "most_frequent", description="Categorical missing values."
    )
    pca_components: int | None = Field(None, ge=1, description="Project onto this many components.")


class TextPreprocess(Section):
    lowercase: bool = Field(True, description="Lowercase texts before tokenizing.")
    num_words: int = Field(10000, ge=10, description="Vocabulary: the most frequent train tokens.")
    maxlen: int = Field(200, ge=1, description="Pad or truncate every sequence to this length.")
    truncate: Literal["pre", "post"] = Field("post", description="Which end to cut long texts at.")


class PreprocessConfig(Section):
    image: ImagePreprocess = Field(default_factory=ImagePreprocess)
    table: TablePreprocess = Field(default_factory=TablePreprocess)
    text: TextPreprocess = Field(default_factory=TextPreprocess)


# ------------------------------------------------------------------------------------ augment

Prob = Annotated[float, Field(ge=0, le=1)]


class FlipAug(Section):
    p: Prob = Field(0.5, description="Probability of flipping each image.")


class HFlipAug(FlipAug):
    """The horizontal flip, with airbench's alternating scheme as an option."""

    alternate: bool = Field(
        False, description="Alternating flip (airbench): each training image gets ONE coin "
        "(p 0.5) for the run, from the seed and its position in the split; even epochs flip "
        "the images whose coin is heads, odd epochs the others, so every image is seen both "
        "ways in every two epochs. Needs p: 0.5. false: a fresh coin per image and epoch.")

    @model_validator(mode="after")
    def _alternate_needs_half(self) -> HFlipAug:
        if self.alternate and self.p != 0.5:
            raise ValueError(f"augment.hflip.p: alternate: true flips every image in one of "
                             f"each two epochs, i.e. with p 0.5 (got {self.p}); set "
                             f"augment.hflip.p: 0.5 or alternate: false")
        return self


class CropAug(Section):
    padding: int = Field(2, ge=1, description="Pad by this many pixels, then crop back at random.")
    p: Prob = Field(1.0, description="Probability of shifting each image.")
    pad_mode: Literal["zeros", "reflect"] = Field(
        "zeros", description="What the padding holds: zeros (the images' background, black) or "
        "reflect (the image mirrored at its border, for natural images such as CIFAR-10).")


class RotateAug(Section):
    degrees: float = Field(10.0, gt=0, le=180, description="Rotate by up to +/- this angle.")
    p: Prob = Field(0.5, description="Probability of rotating each image.")


class JitterAug(Section):
    amount: float = Field(0.1, gt=0, le=1, description="Max relative change.")
    p: Prob = Field(0.5, description="Probability of changing each image.")


class NoiseAug(Section):
    std: float = Field(0.05, gt=0, description="Standard deviation of the added noise.")
    p: Prob = Field(0.5, description="Probability of adding noise to each image.")


AugmentPreset = Literal["auto", "none", "shifts", "natural"]


class AugmentConfig(Section):
    """On-the-fly augmentation of TRAINING batches of images: the ops given, plus those of
    `preset` (config/augment_preset.py), which fills in only the ops not given."""

    preset: AugmentPreset = Field(
        "auto", description="auto: `shifts` for images when no op is given, else `none`; none "
        "for tables, texts and a GAN (`model.type: dcgan`). none: only the ops given. shifts: random shifts of half the "
        "images by up to side / 28 px (augment.crop), safe for any images. natural: shifts + horizontal flips "
        "(augment.hflip), for photos whose mirror image keeps its class; never for digits, "
        "letters or text-like scans.")
    hflip: HFlipAug | None = Field(None, description="Horizontal flip.")
    vflip: FlipAug | None = Field(None, description="Vertical flip.")
    crop: CropAug | None = Field(None, description="Random crop after padding (a shift).")
    rotate: RotateAug | None = Field(None, description="Small random rotation.")
    brightness: JitterAug | None = Field(None, description="Brightness jitter.")
    contrast: JitterAug | None = Field(None, description="Contrast jitter.")
    noise: NoiseAug | None = Field(None, description="Gaussian noise.")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, name) is not None for name in OPS)


OPS = tuple(name for name in AugmentConfig.model_fields if name != "preset")


# ------------------------------------------------------------------------------------ balance


class BalanceConfig(Section):
    """Imbalance handling, applied to the TRAINING split only."""

    method: Literal["none", "oversample", "undersample", "class_weight", "weighted_sampler"] = Field(
        "none", description="Random over/under-sampling, loss weights, or a weighted batch sampler."
    )
    ratio: float = Field(
        1.0, gt=0, le=1,
        description="oversample/undersample: each class ends at >= ratio x the largest class "
        "(over) or the largest ends at <= smallest / ratio (under). 1.0 = fully balanced.",
    )
