"""The context-blur experiment on tiny tuning settings: every sigma on the same faces, paired against the first."""

from __future__ import annotations

import json

from export.eval import context_blur


def test_every_sigma_is_measured_on_the_same_faces(shared_data, detector_model, tmp_path, capsys):
    out = tmp_path / "blur.json"
    assert context_blur.main(["--data", str(shared_data), "--detector", str(detector_model), "--faces", "2",
                              "--images", "2", "--sigmas", "0,4", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["sigma"] for r in result["rows"]] == [0.0, 4.0]
    assert len(result["distances"]["0"]) == len(result["distances"]["4"]) == 2
    assert result["rows"][0]["paired_mean"] == 0.0 and result["rows"][1]["detail_median"] > 0
    assert "paired against sigma 0" in capsys.readouterr().out
