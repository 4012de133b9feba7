"""The `upscale` command line: thin Typer commands over the library."""
