"""`python -m upscale.train` and `torchrun -m upscale.train` run `upscale-train`."""

from upscale.train.cli import main

main()
