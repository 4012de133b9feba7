"""`python -m upscale` runs the command line."""

from upscale.cli.app import main

main()
