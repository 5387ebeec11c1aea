"""Start the cylc-access service: ``python -m cylc_hub.services.access``."""

from cylc_hub.services.access.app import main

main()
