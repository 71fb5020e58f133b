"""The core service process: its servicers and how they are wired."""
