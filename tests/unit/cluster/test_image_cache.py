"""The image cache shared by every checkout: one builder per image, recent builds kept."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tfsbed.cluster.node import images


def _recipe(tmp_path: Path, content: bytes) -> images.Recipe:
    f = tmp_path / f"bin-{content.hex()}"
    f.write_bytes(content)
    return images.Recipe("registry.k8s.io/pause:3.10.1", (images.Entry("/pause", f),))


@pytest.fixture
def builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A fake umoci build (slow enough for two builders to meet); the digests it built."""
    monkeypatch.setenv("TFSCTL_CACHE", str(tmp_path / "cache"))
    built: list[str] = []

    def fake_build(recipe: images.Recipe, layout: Path) -> None:
        time.sleep(0.3)
        layout.mkdir(parents=True)
        (layout / ".complete").write_text(f"{recipe.ref}\n")
        built.append(layout.name)

    monkeypatch.setattr(images, "_build", fake_build)
    return built


def test_two_builders_of_one_image_build_it_once(tmp_path: Path, builds: list[str]) -> None:
    recipe = _recipe(tmp_path, b"a")
    results: list[images.Built] = []
    threads = [threading.Thread(target=lambda: results.append(images.build(recipe))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1
    assert sorted(r.cached for r in results) == [False, True]
    assert results[0].layout == results[1].layout


def test_the_newest_builds_are_kept_and_a_cache_hit_counts_as_use(tmp_path: Path, builds: list[str]) -> None:
    recipes = [_recipe(tmp_path, bytes([i])) for i in range(images.KEEP_BUILDS + 1)]
    first = images.build(recipes[0])
    for r in recipes[1:-1]:
        images.build(r)
    old = time.time() - 3600
    os.utime(first.layout / ".complete", (old, old))
    assert images.build(recipes[0]).cached  # used again: now the newest
    images.build(recipes[-1])
    kept = {d.name for d in first.layout.parent.iterdir() if d.is_dir()}
    assert len(kept) == images.KEEP_BUILDS
    assert first.layout.name in kept
    assert builds[1] not in kept  # the least recently used one went


def test_a_killed_builds_staging_directory_is_removed(tmp_path: Path, builds: list[str]) -> None:
    recipe = _recipe(tmp_path, b"s")
    directory = images.images_cache() / recipe.name
    (directory / "deadbeef.tmp").mkdir(parents=True)
    images.build(recipe)
    assert not (directory / "deadbeef.tmp").exists()
