"""The Function App ships without numpy, pandas, scipy, scikit-learn, fairlearn or pyarrow: in the Azure
configuration nothing a function reaches imports them (the monitoring pass is an Azure ML job).

bench/function_imports.py walks it in a fresh interpreter: import function_app, build the Azure platform
(fake workspace, identity-based storage), then every module the functions refer to and every import
statement in them, module level or inside a function (the adapters' lazy SDK imports), until nothing new
is imported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "pandas", "scipy", "sklearn", "fairlearn", "pyarrow")
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
AZURE_SETTINGS = {
    "MLOPS_PLATFORM": "azure", "AZURE_SUBSCRIPTION_ID": "00000000-1111-2222-3333-444444444444",
    "AZURE_RESOURCE_GROUP": "rg-mlops", "AZUREML_WORKSPACE": "mlw-mlops",
    "AzureWebJobsStorage__blobServiceUri": "https://stmlops.blob.core.windows.net",
    "AzureWebJobsStorage__queueServiceUri": "https://stmlops.queue.core.windows.net",
    "AzureWebJobsStorage__credential": "managedidentity", "AzureWebJobsStorage__clientId": CLIENT_ID,
    "AZURE_CLIENT_ID": CLIENT_ID, "EVENTGRID_TOPIC_ENDPOINT": "https://evgt-mlops.eastus-1.eventgrid.azure.net/api/events",
}


def azure_environment() -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith(("AzureWebJobsStorage", "EVENTGRID_", "AZURE", "MLOPS_", "DATA_COLLECTOR"))}
    return {**inherited, **AZURE_SETTINGS}


@pytest.mark.slow      # imports every function in a process
def test_no_function_imports_the_numeric_stack_in_the_azure_configuration():
    done = subprocess.run([sys.executable, "-m", "bench.function_imports", "--all"], cwd=ROOT,
                          env=azure_environment(), capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr
    walk = json.loads(done.stdout)
    assert walk["heavy"] == {}, f"imported on a function's path (package: the import that brought it): {walk['heavy']}"
    # the walk went where the functions go: every handler, the Azure adapters, and the SDKs they import in calls
    handlers = {p.stem for p in (ROOT / "lifecycle" / "handlers").glob("*.py") if p.stem != "__init__"}
    assert {f"lifecycle.handlers.{h}" for h in handlers} <= set(walk["walked"])
    assert {"lifecycle.adapters.azure_jobs", "lifecycle.adapters.collected_data",
            "lifecycle.adapters.azure_metrics"} <= set(walk["walked"])
    assert {"azure.ai.ml", "azure.monitor.query", "azure.identity"} <= set(walk["azure_sdks"])
    assert len(walk["functions"]) >= 14


def test_the_walk_finds_a_heavy_import_hidden_inside_a_function(tmp_path):
    (tmp_path / "probe_handler.py").write_text("def handle():\n    from probe_adapter import fit\n    return fit()\n")
    (tmp_path / "probe_adapter.py").write_text("import json\n\ndef fit():\n    import numpy\n    return numpy\n")
    script = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{str(tmp_path)!r}, {str(ROOT)!r}]
        from pathlib import Path
        from bench.function_imports import walk
        import probe_handler
        print(json.dumps(walk({{"probe_handler"}}, root=Path({str(tmp_path)!r}))))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    walked, heavy = json.loads(done.stdout)
    assert walked == ["probe_adapter", "probe_handler"]
    assert heavy == {"numpy": "probe_adapter: numpy"}
