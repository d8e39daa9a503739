"""``python -m archcalc``: the ``archcalc`` script."""

from archcalc.cli import main

if __name__ == "__main__":
    main()
