"""The Function App's package as Core Tools would build it, its size against the goal and against the old
requirements, and each function's first-call import time from the package itself.

    .venv/bin/python bench/package.py [--functions NAME,NAME]

The package: requirements.txt installed with `pip install --target` for the Linux Python 3.11 worker
(manylinux wheels, as the remote build resolves them) under .python_packages/lib/site-packages, plus the
app's files after .funcignore (applied with pathspec, gitignore rules). Wheels are kept in
.mlops/bench/wheels, so a second run installs offline. The peer is what requirements.txt held before the
monitoring pass moved to an Azure ML job: the same list plus numpy, scipy, pandas, pyarrow, scikit-learn and
fairlearn.

Import times: a fresh interpreter per function that sees only the standard library and the package (-I -S),
in the Azure configuration (fake workspace, identity-based storage): import function_app, then build the
platform and import every module the function's call reaches (bench/function_imports.py). Always exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_MB = 150
WHEELS = ROOT / ".mlops" / "bench" / "wheels"
# What requirements.txt added for the monitor timer before the pass became an Azure ML job.
OLD_MONITORING = ["numpy>=1.26", "scipy>=1.11", "pandas>=2.2", "pyarrow>=15", "scikit-learn>=1.5", "fairlearn>=0.12"]
# Linux x86_64, CPython 3.11: the Functions Python worker's platform.
PLATFORM = ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--only-binary=:all:",
            *[arg for tag in ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_24_x86_64",
                              "manylinux_2_27_x86_64", "manylinux_2_28_x86_64") for arg in ("--platform", tag)]]
# Core Tools leaves these out whatever .funcignore says; the rest is the design's list if there is no .funcignore.
ALWAYS_OUT = [".git/", ".funcignore"]
WITHOUT_FUNCIGNORE = [".venv/", "node_modules/", "emulator/", "tests/", "bench/", ".mlops/", "__pycache__/",
                      "local.settings.json"]
SETTINGS = {   # the Azure configuration, with made-up names (nothing is called)
    "MLOPS_PLATFORM": "azure", "AZURE_SUBSCRIPTION_ID": "00000000-1111-2222-3333-444444444444",
    "AZURE_RESOURCE_GROUP": "rg-mlops", "AZUREML_WORKSPACE": "mlw-mlops",
    "AzureWebJobsStorage__blobServiceUri": "https://stmlops.blob.core.windows.net",
    "AzureWebJobsStorage__credential": "managedidentity",
    "AzureWebJobsStorage__clientId": "11111111-2222-3333-4444-555555555555",
    "AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "EVENTGRID_TOPIC_ENDPOINT": "https://evgt-mlops.eastus-1.eventgrid.azure.net/api/events",
}


def requirements() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def install(packages: list[str], target: Path) -> None:
    """pip install --target for the worker's platform, from the kept wheels; downloads only what is missing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    listed = target.parent / f"{target.name}-requirements.txt"
    listed.write_text("\n".join(packages) + "\n")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    offline = [*pip, "install", "--no-index", "--find-links", str(WHEELS), "--target", str(target), *PLATFORM,
               "-r", str(listed)]
    if subprocess.run(offline, capture_output=True).returncode == 0:
        return
    WHEELS.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    for step in ([*pip, "download", "-d", str(WHEELS), *PLATFORM, "-r", str(listed)], offline):
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"pip failed ({' '.join(step[3:5])}):\n{done.stderr[-2000:]}")


def app_files() -> tuple[list[Path], str]:
    """The app's files that ship, and which ignore rules said so."""
    import pathspec
    funcignore = ROOT / ".funcignore"
    rules = funcignore.read_text().splitlines() if funcignore.is_file() else WITHOUT_FUNCIGNORE
    spec = pathspec.GitIgnoreSpec.from_lines([*ALWAYS_OUT, *rules])
    kept = []
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder).relative_to(ROOT)
        dirs[:] = [d for d in dirs if not spec.match_file(f"{(here / d).as_posix()}/")]
        kept += [ROOT / here / f for f in files if not spec.match_file((here / f).as_posix())]
    return sorted(kept), ".funcignore" if funcignore.is_file() else "no .funcignore yet: the design's list"


def size_mb(paths) -> float:
    return sum(p.stat().st_size for p in paths if p.is_file() and not p.is_symlink()) / 2**20


def tree(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def zipped_mb(files: list[tuple[Path, str]], out: Path) -> float:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for path, name in files:
            z.write(path, name)
    return out.stat().st_size / 2**20


def first_call(package: Path, site: Path, function: str) -> dict:
    """bench/function_imports.py in a fresh interpreter that sees only the standard library and the package."""
    runner = (f"import runpy, site, sys; sys.path[:0] = [{str(package)!r}]; site.addsitedir({str(site)!r}); "
              f"sys.argv = ['function_imports', {function!r}]; "
              f"runpy.run_path({str(package / 'function_imports.py')!r}, run_name='__main__')")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", ""), "FUNCTION_APP_ROOT": str(package),
           **SETTINGS}
    done = subprocess.run([sys.executable, "-I", "-S", "-c", runner], cwd=package, env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", default="", help="comma-separated function names (default: all)")
    wanted = [f for f in parser.parse_args().functions.split(",") if f]

    with tempfile.TemporaryDirectory(prefix="funcpkg-") as scratch_dir:
        scratch = Path(scratch_dir)
        package, site = scratch / "app", scratch / "app" / ".python_packages" / "lib" / "site-packages"
        started = time.perf_counter()
        install(requirements(), site)
        installed = time.perf_counter() - started
        old = scratch / "old-site-packages"
        install(requirements() + OLD_MONITORING, old)

        files, rules = app_files()
        for path in files:
            copy = package / path.relative_to(ROOT)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
        shutil.copy2(ROOT / "bench" / "function_imports.py", package / "function_imports.py")   # the probe, not shipped
        app_mb, deps_mb, old_mb = size_mb(files), size_mb(tree(site)), size_mb(tree(old))
        total = app_mb + deps_mb
        zip_mb = zipped_mb([(p, p.relative_to(package).as_posix()) for p in tree(package)
                            if p.name != "function_imports.py" or p.parent != package], scratch / "app.zip")
        heavy = sorted(d.name for d in site.iterdir() if d.name.split("-")[0].lower() in
                       ("numpy", "pandas", "scipy", "sklearn", "scikit_learn", "fairlearn", "pyarrow"))

        print(f"Function App package ({rules}; {len(files)} app files, pip install --target for Linux cp311 "
              f"in {installed:.0f} s)")
        print(f"  app files                    {app_mb:8.1f} MB")
        print(f"  requirements.txt installed   {deps_mb:8.1f} MB")
        print(f"  package                      {total:8.1f} MB   goal <= {GOAL_MB} MB: "
              f"{'met' if total <= GOAL_MB else 'NOT met'}   (zipped {zip_mb:.1f} MB)")
        print(f"  old requirements (+ numpy, scipy, pandas, pyarrow, scikit-learn, fairlearn) "
              f"{old_mb + app_mb:8.1f} MB")
        print(f"  ratio package / old = {total / (old_mb + app_mb):.2f}")
        print(f"  numeric packages in the package: {heavy or 'none'}")

        import importlib
        sys.path.insert(0, str(ROOT))
        import function_app
        importlib.reload(function_app)
        names = wanted or [f.get_function_name() for f in function_app.app.get_functions()]
        print("First call, from the package, per function (fresh interpreter; import function_app, then every module "
              "the call can reach: an upper bound):")
        print(f"  {'function':24} {'function_app':>13} {'first call':>11} {'total':>8}  numeric packages imported")
        for name in names:
            r = first_call(package, site, name)
            if "error" in r:
                print(f"  {name:24} failed: {r['error']}")
                continue
            app_s, call_s = r["import_function_app_s"], r["first_call_imports_s"]
            print(f"  {name:24} {app_s * 1000:10.0f} ms {call_s * 1000:8.0f} ms {(app_s + call_s) * 1000:5.0f} ms"
                  f"  {', '.join(r['heavy']) or 'none'}")


if __name__ == "__main__":
    main()
