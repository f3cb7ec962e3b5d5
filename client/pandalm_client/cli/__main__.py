"""`python -m pandalm_client.cli`, the same as `pandalm`."""

from . import main

main()
