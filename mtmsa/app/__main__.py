"""``python -m mtmsa.app``: see :mod:`mtmsa.app.server`."""

from mtmsa.app.server import main

if __name__ == "__main__":
    main()
