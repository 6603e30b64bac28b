import sys

from hack.chartgen.generate import main

sys.exit(main())
