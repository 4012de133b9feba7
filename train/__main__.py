"""`python -m upscale.train` and `torchrun -m upscale.train` run `upscale-train`."""

from upscale.train import main

main()
