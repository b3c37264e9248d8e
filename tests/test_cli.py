"""The `colorbench` command: colorize files and folders, skip bad files, exit status."""

import subprocess
import sys

import numpy as np
from PIL import Image
from skimage import color as skc

from colorbench.cli import main


def _write(path, h, w, seed=0):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return arr


def test_colorize_folder_skips_bad_files(tmp_path, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    a = _write(src / "a.png", 40, 60)
    b = _write(src / "sub" / "b.jpg", 33, 21, 1)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (src / "notes.txt").write_text("not an image, and not an image suffix: ignored")
    out = tmp_path / "out"
    rc = main(["colorize", str(src), "-o", str(out), "--model", "gray"])
    captured = capsys.readouterr()
    assert rc == 1  # one file failed
    assert "broken.png" in captured.err and "2 colorized, 1 failed" in captured.out
    ra = np.asarray(Image.open(out / "a_gray.png"))
    assert ra.shape == a.shape
    assert np.abs(skc.rgb2lab(ra)[..., 0] - skc.rgb2lab(a)[..., 0]).max() < 0.5
    assert np.asarray(Image.open(out / "b_gray.png")).shape[:2] == (33, 21)


def test_colorize_single_file_ok(tmp_path):
    _write(tmp_path / "x.png", 20, 30)
    rc = main(["colorize", str(tmp_path / "x.png"), "-o", str(tmp_path / "y.png"), "--model", "gray"])
    assert rc == 0 and (tmp_path / "y.png").is_file()


def test_unknown_model_suggests(tmp_path, capsys):
    _write(tmp_path / "x.png", 20, 30)
    rc = main(["colorize", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"), "--model", "grey"])
    assert rc == 2 and "Did you mean 'gray'" in capsys.readouterr().err


def test_list_models_console():
    out = subprocess.run([sys.executable, "-m", "colorbench.cli", "list", "models"], capture_output=True, text=True,
                         check=True).stdout
    names = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {"gray", "random", "eccv16", "siggraph17"} <= names


def test_import_is_lazy():
    code = "import sys, colorbench; print('torch' in sys.modules, 'gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
