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


def test_the_helm_test_image_is_the_charts_own_name_with_debians_curl_and_says_so(tmp_path: Path) -> None:
    ref = images.chart_test_image()
    assert ref.startswith("docker.io/curlimages/curl:")  # values.yaml tests.image, fully qualified
    bb = tmp_path / "busybox"
    bb.write_bytes(b"elf")
    curl = Path("/usr/bin/curl")
    recipe = images.curl_recipe(ref, curl, bb, ["sh", "od", "tr", "grep"], tmp_path)
    paths = {e.path for e in recipe.entries}
    assert {"/usr/bin/curl", "/bin/sh", "/bin/od", "/bin/tr", "/bin/grep", "/etc/passwd"} <= paths
    # its libraries come along (no libc in the image otherwise)
    assert any("libcurl" in p for p in paths) and any(p.startswith("/lib") and "libc.so" in p for p in paths)
    description = recipe.labels[images.LABEL_DESCRIPTION]
    assert (
        f"local stand-in for {ref}: Debian's curl 7." in description
        and "built on this machine" in description
    )
