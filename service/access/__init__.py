"""Who may do what: bearer-token authentication, the role matrix, and credential encryption."""
