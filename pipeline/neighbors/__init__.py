"""neighbors package."""
