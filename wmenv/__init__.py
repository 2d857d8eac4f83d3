"""wmenv."""
