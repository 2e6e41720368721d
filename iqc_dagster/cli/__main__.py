import sys

from iqc_dagster.cli import main

sys.exit(main())
