"""Reference clients shipped with the server (each runnable as ``python -m clients.<name>``)."""
