"""Image recipes: the content digest decides rebuilds (pure; no umoci, no registry)."""

from __future__ import annotations

from pathlib import Path

from tfsbed.cluster.node import images


def _recipe(tmp_path: Path, content: bytes = b"x", **kw: object) -> images.Recipe:
    f = tmp_path / "bin"
    f.write_bytes(content)
    return images.Recipe("registry.k8s.io/pause:3.10.1", (images.Entry("/pause", f),), **kw)  # type: ignore[arg-type]


def test_digest_is_stable_for_the_same_content(tmp_path: Path) -> None:
    assert _recipe(tmp_path).digest() == _recipe(tmp_path).digest()


def test_digest_changes_with_a_file_byte(tmp_path: Path) -> None:
    assert _recipe(tmp_path, b"x").digest() != _recipe(tmp_path, b"y").digest()


def test_digest_changes_with_the_config(tmp_path: Path) -> None:
    assert _recipe(tmp_path).digest() != _recipe(tmp_path, entrypoint=("/pause",)).digest()
    assert _recipe(tmp_path).digest() != _recipe(tmp_path, labels={"a": "b"}).digest()


def test_digest_ignores_entry_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"1")
    b.write_bytes(b"2")
    one = images.Recipe("docker.io/x:1", (images.Entry("/a", a), images.Entry("/b", b)))
    two = images.Recipe("docker.io/x:1", (images.Entry("/b", b), images.Entry("/a", a)))
    assert one.digest() == two.digest()


def test_busybox_recipe_links_every_applet_to_the_one_binary(tmp_path: Path) -> None:
    bb = tmp_path / "busybox"
    bb.write_bytes(b"elf")
    recipe = images.busybox_recipe(bb, ["sh", "wget", "busybox", "nslookup"], ())
    links = {e.path: e.link for e in recipe.entries if e.link}
    assert links == {"/bin/sh": "busybox", "/bin/wget": "busybox", "/bin/nslookup": "busybox"}
    assert recipe.name == "busybox" and recipe.tag == "1.35.0"


def test_every_local_image_says_it_is_built_here(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"1")
    for recipe in (images.pause_recipe(f), images.coredns_recipe(f), images.busybox_recipe(f, [], ())):
        assert "built on this machine" in recipe.labels[images.LABEL_DESCRIPTION]
