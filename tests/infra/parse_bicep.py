"""Parse every .bicep file under a folder with pycep-parser and print {relative path: template JSON} (a file
that does not parse maps to {"error": message}). Run by the infra venv's Python (pycep is not in the
project's venv): `.venv-infra/bin/python tests/infra/parse_bicep.py infra`."""
import json
import sys
from pathlib import Path

from pycep import BicepParser


def main(root: Path) -> None:
    parser = BicepParser()
    parsed = {}
    for path in sorted(root.rglob("*.bicep")):
        try:
            parsed[path.relative_to(root).as_posix()] = parser.parse(file_path=path)
        except Exception as error:  # any parse failure is reported, not raised: the test names the file
            parsed[path.relative_to(root).as_posix()] = {"error": f"{type(error).__name__}: {error}"}
    json.dump(parsed, sys.stdout, default=str)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
