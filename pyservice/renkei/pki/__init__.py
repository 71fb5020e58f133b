"""The development PKI: a CA in its own directory that issues each service and client its certificate."""
