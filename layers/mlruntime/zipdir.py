"""Zip a directory reproducibly: sorted entries, a fixed timestamp, one compression method.

python zipdir.py SOURCE_DIR TARGET.zip deflated|lzma
"""

import os
import sys
import zipfile

METHODS = {"deflated": zipfile.ZIP_DEFLATED, "lzma": zipfile.ZIP_LZMA}


def main(source: str, target: str, method: str) -> None:
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    files = sorted(
        os.path.relpath(os.path.join(root, name), source) for root, _, names in os.walk(source) for name in names
    )
    level = 9 if method == "deflated" else None
    with zipfile.ZipFile(target, "w", METHODS[method], compresslevel=level) as archive:
        for name in files:
            info = zipfile.ZipInfo(name.replace(os.sep, "/"), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = METHODS[method]
            with open(os.path.join(source, name), "rb") as handle:
                archive.writestr(info, handle.read(), compresslevel=level)


if __name__ == "__main__":
    main(*sys.argv[1:])
