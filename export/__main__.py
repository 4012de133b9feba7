"""`python -m upscale.export` runs `upscale-export` (the runtime converts .pth files this way, in a child process)."""

from upscale.export.cli import main

main()
