"""Code that runs inside the sandbox. Standard library only, no project imports: the worker packs
these files into one zip in memory, which bubblewrap copies into the sandbox at /runner."""
