"""scripts.before_after_grid: portraits laid at several sizes, through the same chain as `edgeanon anonymize`."""

from __future__ import annotations

import cv2
import numpy as np

from scripts import before_after_grid as grid


def test_the_shipped_portraits_go_through_every_method_named(tmp_path, capsys):
    out = tmp_path / "grid.jpg"
    assert grid.main(["--out", str(out), "--methods", "blur,pixelate", "--sizes", "40,80"]) == 0
    picture = cv2.imread(str(out))
    # A header and one row per shipped portrait; per size an original and one tile per method.
    assert picture.shape[1] == grid.LABEL_WIDTH + 2 * (3 * (grid.TILE + 2) + 10)
    printed = capsys.readouterr().out
    assert ("obama.jpg (dark skin, man 50s, frontal): blur: 40px blur, 80px blur; "
            "pixelate: 40px pixelate, 80px pixelate") in printed
    assert printed.count(": blur: 40px blur, 80px blur;") == len(grid.load_portraits(grid.SHIPPED)) == 6


def test_a_portraits_folder_must_name_each_licence(tmp_path, face_image, capsys):
    cv2.imwrite(str(tmp_path / "a.jpg"), face_image)
    (tmp_path / "portraits.csv").write_text("file,group,origin,licence\na.jpg,light skin,scikit-image,\n")
    assert grid.main(["--out", str(tmp_path / "g.jpg"), "--portraits", str(tmp_path)]) == 2
    assert "a.jpg' has no licence" in capsys.readouterr().err
    (tmp_path / "portraits.csv").write_text("file,group,origin,licence\na.jpg,light skin,scikit-image,public domain\n")
    assert grid.main(["--out", str(tmp_path / "g.jpg"), "--portraits", str(tmp_path), "--methods", "blur",
                      "--sizes", "80"]) == 0
    assert np.any(cv2.imread(str(tmp_path / "g.jpg")))


def test_an_unknown_method_is_refused_in_one_line(tmp_path, capsys):
    assert grid.main(["--out", str(tmp_path / "g.jpg"), "--methods", "blur,swirl"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "swirl" in err
