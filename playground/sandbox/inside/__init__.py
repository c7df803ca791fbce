"""Code that runs inside the sandbox. Standard library only, no project imports: these files are
copied to a directory the sandbox user can read and bound read-only at /runner."""
