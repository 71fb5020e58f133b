import sys

from renkei.cli.main import main

sys.exit(main())
