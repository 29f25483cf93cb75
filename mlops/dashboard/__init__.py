"""`mlops dashboard`: a web page on 127.0.0.1, behind a key, that shows what `mlops status --json` and
`mlops events` show (the same functions, no second source of truth), live, with the rollout's and the gates'
override buttons (the same functions the CLI calls)."""
