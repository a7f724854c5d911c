"""The mount itself: layout, collection names, the command line."""

import errno
import os
import subprocess

import pytest

from conftest import TISFS


def test_layout(tisfs):
    assert sorted(os.listdir(tisfs.mnt)) == ["collections", "logs", "tasks"]
    assert os.listdir(tisfs.path("collections")) == []
    os.mkdir(tisfs.path("collections", "employees"))
    assert os.listdir(tisfs.path("collections")) == ["employees"]
    assert sorted(os.listdir(tisfs.path("collections", "employees"))) == \
        ["build", "create", "incr", "incr_status", "logs", "progress", "schema", "select", "status", "verify"]
    st = tisfs.status("employees")
    assert st["taskid"] is None and st["state"] == "reserved"
    assert not st["complete"] and not st["failed"] and st["errs"] == ""
    # DESIGN's task status shape, every key present
    assert {"progress", "started", "finished", "stages", "faild"} <= set(st), st
    assert tisfs.read("collections", "employees", "create") == ""
    assert tisfs.read("collections", "employees", "logs") == ""
    assert tisfs.json("collections", "employees", "schema")["generation"] is None


@pytest.mark.parametrize("name,err", [
    ("has space", errno.EINVAL),
    ("dot.name", errno.EINVAL),
    ("ünïcode", errno.EINVAL),
    ("x" * 65, errno.ENAMETOOLONG),
    ("..", errno.EEXIST),          # the kernel resolves it: collections/.. is the root
])
def test_bad_names_refused(tisfs, name, err):
    with pytest.raises(OSError) as e:
        os.mkdir(tisfs.path("collections", name))
    assert e.value.errno == err
    assert os.listdir(tisfs.path("collections")) == []


def test_names_that_escape_are_refused(tisfs):
    with pytest.raises(OSError):
        os.mkdir(tisfs.path("collections", "a", "b"))          # no nesting
    with pytest.raises(OSError) as e:
        os.mkdir(tisfs.path("elsewhere"))                      # only under collections/
    assert e.value.errno == errno.EPERM
    with pytest.raises(OSError) as e:
        os.mkdir(tisfs.path("tasks", "7"))
    assert e.value.errno == errno.EPERM
    os.mkdir(tisfs.path("collections", "A-z_0-9"))
    os.mkdir(tisfs.path("collections", "y" * 64))
    with pytest.raises(FileExistsError):
        os.mkdir(tisfs.path("collections", "A-z_0-9"))
    assert sorted(os.listdir(tisfs.path("collections"))) == ["A-z_0-9", "y" * 64]
    # Nothing can be created inside a collection but its own files.
    with pytest.raises(OSError):
        open(tisfs.path("collections", "A-z_0-9", "other"), "w").close()
    with pytest.raises(FileNotFoundError):
        open(tisfs.path("collections", "nope", "status")).close()


def test_read_only_files_refuse_writes(tisfs):
    os.mkdir(tisfs.path("collections", "c"))
    for f in ("status", "logs", "schema"):
        with pytest.raises(PermissionError):
            open(tisfs.path("collections", "c", f), "w").close()
    with pytest.raises(PermissionError):
        open(tisfs.path("collections", "c", "build")).read()


def test_build_without_spec(tisfs):
    os.mkdir(tisfs.path("collections", "c"))
    with pytest.raises(OSError) as e:
        tisfs.write("1\n", "collections", "c", "build")
    assert e.value.errno == errno.EINVAL


def test_rm_r_of_reserved_collection(tisfs):
    os.mkdir(tisfs.path("collections", "c"))
    subprocess.run(["rm", "-r", tisfs.path("collections", "c")], check=True)
    assert os.listdir(tisfs.path("collections")) == []
    with pytest.raises(FileNotFoundError):
        os.rmdir(tisfs.path("collections", "c"))


def test_cli():
    out = subprocess.run([TISFS, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("tisfs ")
    out = subprocess.run([TISFS, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--data" in out.stdout and "MOUNTPOINT" in out.stdout
    out = subprocess.run([TISFS, "--bogus", "/tmp"], capture_output=True, text=True)
    assert out.returncode == 2 and "--bogus" in out.stderr
    out = subprocess.run([TISFS], capture_output=True, text=True)
    assert out.returncode == 2 and "usage" in out.stderr


def test_bad_data_dir_reported_before_detaching(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    (tmp_path / "mnt").mkdir()
    out = subprocess.run([TISFS, "--data", str(blocker / "sub"), str(tmp_path / "mnt")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "--data" in out.stderr
