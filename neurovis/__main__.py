from neurovis.cli import main; import sys; sys.exit(main())
