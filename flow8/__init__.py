"""flow8: self-hosted workflow automation on an actor runtime over Trio."""
