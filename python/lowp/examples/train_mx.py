"""The MX training comparison of docs/torch.md, kept under its first name:
lowp.examples.train with the recipes fp32, mxfp8, mxfp6, mxfp4 and fp8-dynamic
by default and OUT train_mx_out. Every option of lowp.examples.train works.

    PYTHONPATH=build/python /usr/bin/python3 -m lowp.examples.train_mx [--smoke] ...
"""

import sys

try:
    from .train import main as _main
except ImportError:  # run as a script
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from train import main as _main


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv += ["--out", "train_mx_out"]
    return _main(argv)


if __name__ == "__main__":
    main()
