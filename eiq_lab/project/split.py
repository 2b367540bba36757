"""The train/test holdout: a random, seed-reproducible split, stratified by label.

By default only images in no group are assigned; `reshuffle` redraws every image.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from .store import Project

DEFAULT_TEST_HOLDOUT = 20.0


def split_project(
    project: Project, test_holdout: float = DEFAULT_TEST_HOLDOUT, *, seed: int | None = 0, reshuffle: bool = False
) -> dict[str, Any]:
    """Assign images to "train" and "test" at random.

    Images are stratified by their first label (unlabeled images form one stratum), so every
    label gets close to `test_holdout` percent of its images in test.

    Args:
        project: the project to change.
        test_holdout: percent of the images (0-100) to put in test.
        seed: random seed; the same seed and project give the same split. ``None`` draws one.
        reshuffle: redraw all images, not only those in no group.

    Returns:
        ``{"assigned", "train", "test", "test_holdout", "seed", "reshuffled"}``.

    Raises:
        InputError: `test_holdout` outside 0-100.
    """
    import numpy as np

    try:
        percent = float(test_holdout)
    except (TypeError, ValueError):
        raise InputError(f"test holdout must be a percentage between 0 and 100; received {test_holdout!r}") from None
    if not 0.0 <= percent <= 100.0:
        raise InputError(f"test holdout must be a percentage between 0 and 100; received {test_holdout}")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**31))
    rng = np.random.default_rng(seed)
    with project.transaction():
        db = project._db
        where = "" if reshuffle else " WHERE i.grouping IS NULL"
        strata: dict[int, list[int]] = defaultdict(list)
        for image_id, label_id in db.execute(
            "SELECT i.id, (SELECT min(label_id) FROM annotations WHERE image_id = i.id) FROM images i"
            f"{where} ORDER BY i.id"
        ):
            strata[-1 if label_id is None else label_id].append(image_id)
        keys = sorted(strata)
        total = sum(len(strata[k]) for k in keys)
        want = round(total * percent / 100.0)
        exact = [len(strata[k]) * percent / 100.0 for k in keys]
        quota = [int(e) for e in exact]
        # largest remainder: hand out what flooring lost to the strata that lost most
        for i in sorted(range(len(keys)), key=lambda i: (-(exact[i] - quota[i]), keys[i]))[: want - sum(quota)]:
            quota[i] += 1
        updates = []
        for key, n_test in zip(keys, quota, strict=True):
            ids = strata[key]
            order = rng.permutation(len(ids))
            updates.extend(("test", ids[j]) for j in order[:n_test])
            updates.extend(("train", ids[j]) for j in order[n_test:])
        db.executemany("UPDATE images SET grouping = ? WHERE id = ?", updates)
    n_test = sum(quota)
    return {
        "assigned": total,
        "train": total - n_test,
        "test": n_test,
        "test_holdout": percent,
        "seed": seed,
        "reshuffled": bool(reshuffle),
    }
