"""The install rule: `cmake --install <build> --component python` puts a package
that imports on its own (staged here with DESTDIR, so nothing outside the test's
temporary directory is touched)."""
import os
import subprocess
import sys

import pytest

BUILD_DIR = os.environ.get("LOWP_BUILD_DIR")
INSTALL_DIR = os.environ.get("LOWP_PYTHON_INSTALL_DIR")
CMAKE = os.environ.get("CMAKE", "cmake")


@pytest.mark.skipif(not BUILD_DIR or not INSTALL_DIR, reason="run by ctest (needs LOWP_BUILD_DIR)")
def test_installed_package_imports(tmp_path):
    env = dict(os.environ, DESTDIR=str(tmp_path))
    r = subprocess.run([CMAKE, "--install", BUILD_DIR, "--component", "python"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    site = str(tmp_path) + INSTALL_DIR
    assert os.path.isfile(os.path.join(site, "lowp", "__init__.py"))
    # -I: isolated mode, no PYTHONPATH, no user site: only the staged copy can be found.
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import lowp, lowp.examples; "
            "assert lowp.__file__.startswith(sys.argv[1]), lowp.__file__; "
            "print(lowp.decode(lowp.encode([0.3], 'fp8_e4m3'), 'fp8_e4m3')[0])")
    r = subprocess.run([sys.executable, "-I", "-c", code, site], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0.3125"


def test_install_dir_is_on_the_interpreters_path():
    # The default install directory is where this interpreter looks for packages.
    if not INSTALL_DIR:
        pytest.skip("run by ctest (needs LOWP_PYTHON_INSTALL_DIR)")
    r = subprocess.run([sys.executable, "-c", "import sys; print('\\n'.join(sys.path))"],
                       capture_output=True, text=True, env={})
    assert INSTALL_DIR in r.stdout.split("\n")
