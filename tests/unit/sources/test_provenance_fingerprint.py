from __future__ import annotations

from dlforge.data.dataset import Provenance


def test_same_files_in_another_folder_give_the_same_fingerprint(tmp_path):
    a = Provenance("csv", {str(tmp_path / "a" / "data.csv"): "11" * 32}, {"rows": 3})
    b = Provenance("csv", {"/elsewhere/deep/data.csv": "11" * 32}, {"rows": 3})
    assert a.fingerprint == b.fingerprint
    assert len(a.fingerprint) == 16


def test_image_folders_compare_by_class_paths_and_contents_not_root():
    files = {"cats/1.png": "aa", "dogs/1.png": "bb"}
    a = Provenance("image_folder", {f"/home/ann/pets/{k}": v for k, v in files.items()},
                   {"root": "/home/ann/pets", "color": "rgb"})
    b = Provenance("image_folder", {f"/srv/data/pets/{k}": v for k, v in files.items()},
                   {"root": "/srv/data/pets", "color": "rgb"})
    assert a.fingerprint == b.fingerprint
    swapped = Provenance("image_folder", {"/srv/data/pets/cats/1.png": "bb",
                                          "/srv/data/pets/dogs/1.png": "aa"},
                         {"root": "/srv/data/pets", "color": "rgb"})
    assert swapped.fingerprint != a.fingerprint  # a label change is a data change


def test_content_and_details_change_the_fingerprint():
    base = Provenance("csv", {"/x/data.csv": "11" * 32}, {"rows": 3})
    assert Provenance("csv", {"/x/data.csv": "22" * 32}, {"rows": 3}).fingerprint != base.fingerprint
    assert Provenance("csv", {"/x/data.csv": "11" * 32}, {"rows": 4}).fingerprint != base.fingerprint
    assert Provenance("npz", {"/x/data.csv": "11" * 32}, {"rows": 3}).fingerprint != base.fingerprint
