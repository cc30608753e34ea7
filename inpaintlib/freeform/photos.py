"""Real photographs for ``train_inpainting(dataset_path=folder)``: the few that scikit-image's wheel
bundles, and square crops of any photographs for a training folder.

The repository ships no photograph. scikit-image (``pip install scikit-image``; Colab has it) carries a
handful of colour photographs inside its wheel, readable without a network. ``PHOTOGRAPHS`` lists the
ones used here with the rights their docstrings in scikit-image state; all are public domain or CC0.

    photos = bundled_photographs()                      # {name: path inside the installed skimage}
    train = [photos[n] for n in PHOTOGRAPHS if n != "chelsea"]
    write_crops(train, "data/photo_crops", n=600, size=128, seed=0)    # the training folder
    train_inpainting("data/photo_crops", "outputs/photos.pt", num_epochs=..., batch_size=...)
    # chelsea, never cropped for training, is the held-out test photograph
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..checks import check_int, check_number

# name: (file in skimage/data, what it shows, its rights as scikit-image's docstring states them)
PHOTOGRAPHS = {
    "astronaut": ("astronaut.png", "astronaut Eileen Collins (NASA)", "public domain"),
    "coffee": ("coffee.png", "a coffee cup on wood (Rachel Michetti)", "CC0"),
    "rocket": ("rocket.jpg", "DSCOVR's launch on a Falcon 9 (SpaceX)", "public domain"),
    "hubble_deep_field": ("hubble_deep_field.jpg", "the Hubble eXtreme Deep Field (NASA)", "public domain"),
    "retina": ("retina.jpg", "a fundus photograph of a retina (Mikael Häggström)", "CC0"),
    "immunohistochemistry": ("ihc.png", "stained colonic glands (CMMI)", "no known copyright restrictions"),
    "chelsea": ("chelsea.png", "Chelsea the cat (Stefan van der Walt)", "CC0"),
}


def bundled_photographs(names=None) -> dict:
    """{name: Path} of scikit-image's bundled photographs in ``PHOTOGRAPHS`` (all by default), read
    from the installed package: nothing is downloaded. An ImportError says how to install it."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("bundled_photographs needs scikit-image (pip install scikit-image): its wheel carries "
                          "the photographs")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    names = list(PHOTOGRAPHS) if names is None else [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in PHOTOGRAPHS]
    if unknown:
        raise ValueError(f"names must be among {tuple(PHOTOGRAPHS)}, got {unknown}")
    paths = {n: folder / PHOTOGRAPHS[n][0] for n in names}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"this scikit-image does not carry {missing}")
    return paths


def write_crops(photos, folder, n: int, size: int = 128, seed: int = 0, scale=(0.2, 0.6)) -> list:
    """Write ``n`` seeded square crops of ``photos`` (paths), resized to ``size`` x ``size``, as
    ``crop_00000.png`` ... in ``folder``: crop i comes from photo i mod len(photos), its side a
    uniform fraction ``scale`` of that photo's shorter side, at a uniform position, mirrored left to
    right with probability one half; resized by area averaging. Crop i depends only on (seed, i).
    Returns the written paths. A folder that already holds images is refused (nothing is overwritten)."""
    from PIL import Image

    from ..utils import check_writable_dir
    from .data import IMAGE_EXTENSIONS, read_image

    photos = [Path(p) for p in ([photos] if isinstance(photos, (str, Path)) else photos)]
    if not photos:
        raise ValueError("photos must name at least one image file")
    n = check_int(n, "n", 1)
    size = check_int(size, "size", 8)
    seed = check_int(seed, "seed", 0)
    lo, hi = (check_number(s, "scale", 0.0) for s in scale)
    if not 0.0 < lo <= hi <= 1.0:
        raise ValueError(f"scale must be (low, high) with 0 < low <= high <= 1, got {tuple(scale)!r}")
    out = check_writable_dir(folder, "folder")
    taken = [p.name for p in out.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
    if taken:
        raise FileExistsError(f"folder {str(out)!r} already holds images ({taken[0]}, ...): write the crops to an "
                              "empty folder, nothing is overwritten")
    images = [read_image(p, "photos").convert("RGB") for p in photos]
    paths = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        img = images[i % len(images)]
        w, h = img.size
        side = max(1, int(round(rng.uniform(lo, hi) * min(w, h))))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crop = img.crop((x, y, x + side, y + side)).resize((size, size), Image.Resampling.BOX)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        path = out / f"crop_{i:05d}.png"
        crop.save(path)
        paths.append(path)
    return paths
