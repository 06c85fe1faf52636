"""Files the user points lapt at: reading inputs (size-capped, regular files only), checking output
folders, SQLite busy handling, and references to user code (``MODULE:FUNCTION``) hashed but never run here.
"""
