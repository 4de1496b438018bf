"""GitHub: the tracking issue, its comments and labels, through PyGithub."""
