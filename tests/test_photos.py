"""inpaintlib.freeform.photos: scikit-image's bundled photographs and seeded crops for a training folder."""
import numpy as np
import pytest
from PIL import Image

from inpaintlib.freeform import find_images, load_rgb
from inpaintlib.freeform.photos import PHOTOGRAPHS, bundled_photographs, write_crops


def test_bundled_photographs_are_read_from_the_installed_wheel():
    pytest.importorskip("skimage")
    photos = bundled_photographs()
    assert list(photos) == list(PHOTOGRAPHS)
    for name, path in photos.items():
        img = Image.open(path)
        assert path.is_file() and min(img.size) >= 256, (name, img.size)
    assert list(bundled_photographs("chelsea")) == ["chelsea"]
    with pytest.raises(ValueError, match="names must be among"):
        bundled_photographs(["lena"])


def test_write_crops_is_seeded_sized_and_never_overwrites(tmp_path):
    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)).save(photo)
    paths = write_crops([photo], tmp_path / "a", n=5, size=32, seed=3)
    assert [p.name for p in paths] == [f"crop_{i:05d}.png" for i in range(5)]
    assert find_images(tmp_path / "a") == paths
    crops = [load_rgb(p) for p in paths]
    assert all(c.shape == (3, 32, 32) for c in crops)
    assert not all(np.array_equal(crops[0], c) for c in crops[1:])  # different windows
    again = write_crops([photo], tmp_path / "b", n=3, size=32, seed=3)  # crop i depends on (seed, i) only
    assert all(np.array_equal(load_rgb(p), load_rgb(q)) for p, q in zip(paths, again))
    other = write_crops([photo], tmp_path / "c", n=3, size=32, seed=4)
    assert not all(np.array_equal(load_rgb(p), load_rgb(q)) for p, q in zip(paths, other))

    before = paths[0].read_bytes()
    with pytest.raises(FileExistsError, match="already holds images"):
        write_crops([photo], tmp_path / "a", n=2, size=32)
    assert paths[0].read_bytes() == before
    with pytest.raises(ValueError, match="scale"):
        write_crops([photo], tmp_path / "d", n=2, scale=(0.5, 1.5))
    with pytest.raises(ValueError, match="n"):
        write_crops([photo], tmp_path / "d", n=0)
    with pytest.raises(ValueError, match="photos"):
        write_crops([], tmp_path / "d", n=2)
