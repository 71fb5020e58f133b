import sys

from renkei.cli.app import main

sys.exit(main())
