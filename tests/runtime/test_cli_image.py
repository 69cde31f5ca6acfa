"""`skube image pull|import|ls|rm` on a data dir, also while a runtime holds the same store."""
import json
import subprocess
import sys

from conftest import PASSWORD, USER, run
from test_archive import docker_archive

from skube.runtime.images import ImageService


def cli(*args, check=True):
    res = subprocess.run([sys.executable, "-c", "from skube.cli_image import image; image(prog_name='skube image')",
                          *args], capture_output=True, text=True, timeout=60)
    if check:
        assert res.returncode == 0, res
    return res


def test_cli_against_a_running_store(registries, images, tmp_path):
    data = str(tmp_path / "data")
    host = registries.basic.host

    async def go():
        svc = ImageService(tmp_path / "data")  # the "cluster" keeps its store open throughout
        try:
            rec = await svc.pull(f"{registries.anon.host}/library/busybox")
            out = cli("ls", "--data-dir", data).stdout
            assert f"{registries.anon.host}/library/busybox" in out and rec.id[7:19] in out
            res = cli("pull", f"{host}/test/layered:v1", "--data-dir", data, check=False)
            assert res.returncode != 0 and "unauthorized" in res.stderr
            res = cli("pull", f"{host}/test/layered:v1", "--data-dir", data, "--creds", f"{USER}:{PASSWORD}")
            assert "Pull complete" in res.stderr and "Pulled " in res.stdout
            assert svc.get(f"{host}/test/layered:v1") is not None  # the runtime sees the CLI's pull
            archive = docker_archive(tmp_path / "a.tar", images.busybox, ["imported:v9"])
            assert "Loaded image: docker.io/library/imported:v9" in cli("import", str(archive), "--data-dir", data).stdout
            listed = json.loads(cli("ls", "--data-dir", data, "-o", "json").stdout)
            assert {i["name"] for i in listed} == {f"{registries.anon.host}/library/busybox:latest",
                                                   f"{host}/test/layered:v1", "docker.io/library/imported:v9"}
            cli("rm", "imported:v9", f"{host}/test/layered:v1", "--data-dir", data)
            assert [r.name for r in svc.list()] == [rec.name]
            res = cli("rm", "imported:v9", "--data-dir", data, check=False)
            assert res.returncode == 1 and "no such image" in res.stderr
        finally:
            await svc.close()
    run(go())
